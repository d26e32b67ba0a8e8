// The browser side of /api/: fetch with the session's CSRF token, websockets, NDJSON streams.
let csrf = null;

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export function setCsrf(token) { csrf = token; }

async function check(resp) {
  if (resp.ok) return resp;
  let message = `${resp.status} ${resp.statusText}`;
  try { message = (await resp.json()).message || message; } catch (e) { /* not JSON */ }
  throw new ApiError(resp.status, message);
}

export async function request(method, path, body) {
  const headers = {};
  const init = { method, headers, credentials: 'same-origin' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf || '';
  if (body !== undefined) {
    if (body instanceof Blob || body instanceof ArrayBuffer) {
      init.body = body;
      headers['Content-Type'] = 'application/octet-stream';
    } else {
      init.body = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
  }
  // Chrome aborts requests in flight when a network interface changes (every container
  // start adds one): reads are retried; writes are not (they may have happened).
  for (let attempt = 0; ; attempt++) {
    try {
      return await check(await fetch(path, init));
    } catch (e) {
      if (!(e instanceof TypeError) || method !== 'GET' || attempt >= 4) throw e;
      await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
    }
  }
}

export async function get(path) { return (await request('GET', path)).json(); }
export async function post(path, body) { return (await request('POST', path, body === undefined ? {} : body)).json(); }
export async function del(path) { return (await request('DELETE', path)).json(); }

// POST and hand each JSON line of the answer to onLine as it arrives.
export async function postStream(path, body, onLine) {
  const resp = await request('POST', path, body);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) onLine(JSON.parse(line));
    }
  }
  if (buf.trim()) onLine(JSON.parse(buf));
}

export function socket(path, params = {}) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return new WebSocket(url);
}

export function csrfToken() { return csrf; }

// A websocket that comes back after an unexpected close (a network change, a daemon restart)
// until close() is called. onOpen runs on every (re)connection.
export function liveSocket(path, params, { onMessage, onOpen, onState }) {
  let ws = null;
  let closed = false;
  let retry = 0;
  const connect = () => {
    ws = socket(path, params);
    ws.onopen = () => { retry = 0; if (onState) onState('live'); if (onOpen) onOpen(ws); };
    ws.onmessage = (ev) => onMessage(ev, ws);
    ws.onclose = (ev) => {
      if (closed) return;
      if (ev.code === 1000 || retry > 20) { if (onState) onState('ended'); return; }
      if (onState) onState('reconnecting…');
      setTimeout(connect, Math.min(5000, 300 * ++retry));
    };
  };
  connect();
  return { close() { closed = true; if (ws) ws.close(); }, get ws() { return ws; } };
}
