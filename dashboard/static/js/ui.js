// Small DOM helpers: element builder, tables, dialogs, toasts, "copy as CLI".
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

export function table(caption, headers, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))));
}

let toastTimer = null;
export function toast(message, kind = 'info') {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.className = `show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = ''; }, kind === 'error' ? 8000 : 4000);
}

// Run an async action; report its error in a toast. Returns the action's result or undefined.
export async function guarded(fn, done) {
  try {
    const result = await fn();
    if (done) toast(done);
    return result;
  } catch (e) {
    toast(e.message || String(e), 'error');
    return undefined;
  }
}

// A modal dialog; buttons: [{label, value, primary}]; resolves with the chosen value.
export function dialog(title, body, buttons = [{ label: 'Close', value: 'close' }]) {
  const dlg = document.getElementById('dialog');
  document.getElementById('dialog-title').textContent = title;
  clear(document.getElementById('dialog-body')).append(body);
  const actions = clear(document.getElementById('dialog-actions'));
  for (const b of buttons) {
    actions.append(h('button', { value: b.value, class: b.primary ? (b.danger ? 'danger' : 'primary') : '' }, b.label));
  }
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue), { once: true });
    dlg.showModal();
  });
}

export async function confirmDanger(title, text, label) {
  const value = await dialog(title, h('p', {}, text),
    [{ label: 'Cancel', value: 'cancel' }, { label, value: 'ok', primary: true, danger: true }]);
  return value === 'ok';
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('Copied: ' + text);
  } catch (e) {
    toast(text);
  }
}

// The "copy as CLI" button beside an action; command is a string or a function returning one.
export function cliButton(command, what) {
  return h('button', {
    type: 'button', class: 'cli', title: 'Copy as CLI',
    'aria-label': `Copy ${what} as a docker command`,
    onclick: () => {
      const cmd = typeof command === 'function' ? command() : command;
      copyText(cmd);
      const code = document.getElementById('last-cli');
      if (code) code.textContent = cmd;
    },
  }, '>_');
}

// An action button paired with its "copy as CLI" button.
export function action(label, cmd, fn, opts = {}) {
  return h('span', { class: 'action' },
    h('button', { type: 'button', class: opts.danger ? 'danger' : '', onclick: fn, 'data-action': opts.id || label.toLowerCase() }, label),
    cliButton(cmd, label.toLowerCase()));
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', {}, hint) : null);
}

export function bytes(n) {
  if (n === undefined || n === null || n < 0) return '—';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

export function ago(seconds) {
  const d = Date.now() / 1000 - seconds;
  if (d < 60) return `${Math.max(0, Math.floor(d))} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return `${Math.floor(d / 86400)} days ago`;
}

export function shortId(id) { return (id || '').replace(/^sha256:/, '').slice(0, 12); }

export function badge(text, kind) { return h('span', { class: `badge ${kind || text}` }, text); }

export function pre(text, attrs = {}) { return h('pre', attrs, text); }

export function pageHeader(title, ...extra) {
  return h('div', { class: 'page-header' }, h('h1', {}, title), h('div', { class: 'tools' }, extra));
}

export function cliLine() {
  return h('p', { class: 'cli-line' }, h('span', { class: 'muted' }, 'CLI: '), h('code', { id: 'last-cli' }, ''));
}
