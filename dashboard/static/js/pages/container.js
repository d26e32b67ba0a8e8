// One container: overview, live logs, live stats charts, terminal, processes, changes, files, inspect.
import { csrfToken, get, liveSocket, socket } from '../api.js';
import { docker } from '../cli.js';
import { onLeave } from '../main.js';
import { badge, bytes, clear, cliButton, cliLine, field, h, pageHeader, pre, shortId, table } from '../ui.js';
import { containerName, lifecycleActions } from './containers.js';
import { statsCharts } from './charts.js';
import { Terminal } from '../../vendor/xterm/xterm.mjs';
import { FitAddon } from '../../vendor/xterm-addon-fit/addon-fit.mjs';

const TABS = [['overview', 'Overview'], ['logs', 'Logs'], ['stats', 'Stats'], ['terminal', 'Terminal'],
  ['top', 'Processes'], ['changes', 'Changes'], ['files', 'Files'], ['inspect', 'Inspect']];

export async function containerPage(main, id, tab) {
  const c = await get(`/api/containers/${encodeURIComponent(id)}`);
  const name = c.Name.replace(/^\//, '');
  const summary = { Id: c.Id, Names: [c.Name], State: c.State.Status };
  const tabs = h('div', { role: 'tablist', class: 'tabs', 'aria-label': 'Container views' },
    TABS.map(([key, label]) => h('a', { role: 'tab', href: `#/containers/${encodeURIComponent(id)}/${key}`,
      'aria-selected': key === tab ? 'true' : 'false', 'aria-controls': 'tab-panel', id: `tab-${key}`,
      tabindex: key === tab ? '0' : '-1' }, label)));
  // keyboard: arrows move between the tabs (WAI-ARIA tabs pattern), Enter opens one
  tabs.addEventListener('keydown', (ev) => {
    const links = [...tabs.querySelectorAll('[role=tab]')];
    const i = links.indexOf(document.activeElement);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: links.length - 1 }[ev.key];
    if (i < 0 || next === undefined) return;
    ev.preventDefault();
    links[(next + links.length) % links.length].focus();
  });
  const panel = h('section', { role: 'tabpanel', 'aria-labelledby': `tab-${tab}`, class: 'panel', id: 'tab-panel' });
  clear(main).append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/containers' }, 'Containers'), ' / ', name),
    pageHeader(name, badge(c.State.Status), lifecycleActions(summary, async (removed) => {
      if (removed) location.hash = '#/containers';
      else await containerPage(main, id, tab);
    })),
    tabs, panel, cliLine());
  const views = { overview, logs, stats, terminal, top, changes, files, inspect };
  await (views[tab] || overview)(panel, c, name);
}

function overview(panel, c, name) {
  const ports = Object.entries(c.NetworkSettings.Ports || {}).map(([k, v]) => (v || []).map((b) => `${b.HostIp || '0.0.0.0'}:${b.HostPort}→${k}`).join(', ') || k);
  const rows = [
    ['ID', shortId(c.Id)], ['Image', c.Config.Image], ['Command', [...(c.Config.Entrypoint || []), ...(c.Config.Cmd || [])].join(' ')],
    ['State', `${c.State.Status}${c.State.Health ? ` (${c.State.Health.Status})` : ''}`], ['Started', c.State.StartedAt],
    ['Restart policy', c.HostConfig.RestartPolicy ? c.HostConfig.RestartPolicy.Name || 'no' : 'no'],
    ['Ports', ports.join(', ') || '—'], ['Networks', Object.keys(c.NetworkSettings.Networks || {}).join(', ') || '—'],
    ['IP address', Object.values(c.NetworkSettings.Networks || {}).map((n) => n.IPAddress).filter(Boolean).join(', ') || '—'],
    ['Mounts', (c.Mounts || []).map((m) => `${m.Name || m.Source}:${m.Destination}`).join(', ') || '—'],
    ['Environment', (c.Config.Env || []).join('\n')],
  ];
  panel.append(h('dl', { class: 'facts' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
}

function logs(panel, c, name) {
  const out = h('pre', { class: 'logs', role: 'log', 'aria-live': 'polite', 'aria-label': 'Container log', id: 'log-output' });
  const tail = h('input', { type: 'number', min: 0, value: 200, class: 'narrow' });
  const stamps = h('input', { type: 'checkbox' });
  const follow = h('input', { type: 'checkbox', checked: true });
  const search = h('input', { type: 'search', placeholder: 'filter lines' });
  const status = h('span', { class: 'muted' });
  let ws = null;
  let lines = [];
  const show = () => {
    const q = search.value.toLowerCase();
    const shown = q ? lines.filter((l) => l.text.toLowerCase().includes(q)) : lines;
    clear(out).append(...shown.map((l) => (l.stream === 'stderr' ? h('span', { class: 'stderr' }, l.text) : l.text)));
    if (follow.checked) out.scrollTop = out.scrollHeight;
  };
  const connect = () => {
    if (ws) ws.close();
    lines = [];
    show();
    ws = liveSocket(`/api/ws/containers/${encodeURIComponent(c.Id)}/logs`, { tail: tail.value || '0', timestamps: stamps.checked ? '1' : '0' }, {
      onOpen: () => { lines = []; status.textContent = 'following…'; },
      onState: (s) => { if (s !== 'live') status.textContent = s; },
      onMessage: (ev) => {
      const m = JSON.parse(ev.data);
      if (m.error) { status.textContent = m.error; return; }
      if (m.end) { status.textContent = 'the container stopped: end of log'; return; }
      lines.push(m);
      if (lines.length > 5000) lines = lines.slice(-4000);
      show();
    } });
  };
  const cli = () => docker('logs', '-f', '--tail', tail.value || '0', stamps.checked ? '-t' : null, name);
  panel.append(h('div', { class: 'toolbar' }, field('Tail', tail), h('div', { class: 'field check' }, stamps, h('label', { for: (stamps.id = 'log-ts') }, 'Timestamps')),
    h('div', { class: 'field check' }, follow, h('label', { for: (follow.id = 'log-follow') }, 'Scroll with new lines')),
    field('Search', search), cliButton(cli, 'logs'), status), out);
  tail.addEventListener('change', connect);
  stamps.addEventListener('change', connect);
  search.addEventListener('input', show);
  connect();
  onLeave(() => ws && ws.close());
}

function stats(panel, c) {
  const numbers = h('p', { class: 'stat-numbers', 'aria-live': 'off', id: 'stat-numbers' }, 'waiting for the first sample…');
  const charts = statsCharts();
  panel.append(numbers, charts.element);
  let samples = 0;
  const ws = liveSocket(`/api/ws/containers/${encodeURIComponent(c.Id)}/stats`, {}, { onMessage: (ev) => {
    const s = JSON.parse(ev.data);
    if (s.error) { numbers.textContent = s.error; return; }
    samples++;
    charts.add(s);
    numbers.textContent = `CPU ${s.cpu.toFixed(2)} % · memory ${bytes(s.mem)}${s.mem_limit ? ` / ${bytes(s.mem_limit)}` : ''} · net ↓${bytes(s.rx)} ↑${bytes(s.tx)} · block I/O ${bytes(s.blk_read)} / ${bytes(s.blk_write)} · ${samples} samples`;
    numbers.dataset.samples = String(samples);
  } });
  onLeave(() => { ws.close(); charts.destroy(); });
}

function terminal(panel, c, name) {
  if (c.State.Status !== 'running') {
    panel.append(h('p', { class: 'empty' }, 'The container is not running: start it to open a terminal.'));
    return;
  }
  const shell = h('input', { value: 'sh', class: 'narrow' });
  const box = h('div', { class: 'terminal', id: 'terminal', 'aria-label': 'Terminal' });
  const status = h('span', { class: 'muted', id: 'term-status' });
  const term = new Terminal({ cursorBlink: true, fontSize: 14, convertEol: false, scrollback: 5000,
    theme: matchMedia('(prefers-color-scheme: dark)').matches ? {} : { background: '#1e1e1e' } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  let ws = null;
  const connect = () => {
    if (ws) ws.close();
    term.reset();
    ws = socket(`/api/ws/containers/${encodeURIComponent(c.Id)}/exec`, { csrf: csrfToken(), cmd: shell.value || 'sh' });
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      status.textContent = 'connected';
      fit.fit();
      ws.send(JSON.stringify({ resize: [term.cols, term.rows] }));
      term.focus();
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') { const m = JSON.parse(ev.data); if (m.error) term.write(`\r\n${m.error}\r\n`); return; }
      term.write(new Uint8Array(ev.data));
    };
    ws.onclose = () => { status.textContent = 'disconnected'; };
  };
  term.onData((data) => ws && ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ input: data })));
  term.onResize(({ cols, rows }) => ws && ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ resize: [cols, rows] })));
  panel.append(h('div', { class: 'toolbar' }, field('Shell', shell),
    h('button', { type: 'button', onclick: connect }, 'Reconnect'), cliButton(() => docker('exec', '-it', name, shell.value || 'sh'), 'exec'), status), box);
  term.open(box);
  fit.fit();
  const onResize = () => fit.fit();
  window.addEventListener('resize', onResize);
  connect();
  window.__term = term;  // read by the browser tests
  onLeave(() => { window.removeEventListener('resize', onResize); if (ws) ws.close(); term.dispose(); });
}

async function top(panel, c, name) {
  if (c.State.Status !== 'running') { panel.append(h('p', { class: 'empty' }, 'The container is not running.')); return; }
  const t = await get(`/api/containers/${encodeURIComponent(c.Id)}/top`);
  panel.append(h('div', { class: 'toolbar' }, cliButton(docker('top', name), 'top')), table('Processes', t.Titles, t.Processes));
}

async function changes(panel, c, name) {
  const list = await get(`/api/containers/${encodeURIComponent(c.Id)}/changes`);
  const kinds = { 0: ['C', 'changed'], 1: ['A', 'added'], 2: ['D', 'deleted'] };
  panel.append(h('div', { class: 'toolbar' }, cliButton(docker('diff', name), 'diff')),
    table('Filesystem changes', ['Kind', 'Path'], list.map((x) => [badge(kinds[x.Kind][0], kinds[x.Kind][1]), h('span', { class: 'mono' }, x.Path)]),
      'No changes to the image\'s filesystem.'));
}

function files(panel, c, name) {
  const path = h('input', { value: c.Config.WorkingDir || '/etc', class: 'wide' });
  const link = h('a', { class: 'button primary', download: '' }, 'Download as tar');
  const update = () => { link.href = `/api/containers/${encodeURIComponent(c.Id)}/archive?path=${encodeURIComponent(path.value || '/')}`; };
  path.addEventListener('input', update);
  update();
  panel.append(h('div', { class: 'toolbar' }, field('File or folder in the container', path), link,
    cliButton(() => docker('cp', `${name}:${path.value || '/'}`, '-'), 'cp')));
}

function inspect(panel, c, name) {
  panel.append(h('div', { class: 'toolbar' }, cliButton(docker('inspect', name), 'inspect')), pre(JSON.stringify(c, null, 2), { class: 'json' }));
}
