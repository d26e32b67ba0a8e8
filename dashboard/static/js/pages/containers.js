// Containers: the list (state, health, ports, CPU, memory), lifecycle actions, "run" form.
import { del, get, liveSocket, post } from '../api.js';
import { docker, runCommand, splitCommand } from '../cli.js';
import { onLeave } from '../main.js';
import { action, badge, bytes, clear, cliButton, cliLine, confirmDanger, copyText, field, guarded, h, pageHeader, shortId, table } from '../ui.js';

export function containerName(c) { return (c.Names && c.Names[0] || '').replace(/^\//, '') || shortId(c.Id); }

export function healthOf(status) {
  const m = /\((healthy|unhealthy|health: starting)\)/.exec(status || '');
  return m ? m[1].replace('health: ', '') : '';
}

function portLinks(c) {
  const seen = new Set();
  const out = [];
  for (const p of c.Ports || []) {
    if (!p.PublicPort) { out.push(h('span', { class: 'port' }, `${p.PrivatePort}/${p.Type}`)); continue; }
    const key = `${p.PublicPort}/${p.Type}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const host = !p.IP || p.IP === '0.0.0.0' || p.IP === '::' ? location.hostname : p.IP;
    out.push(p.Type === 'tcp'
      ? h('a', { class: 'port', href: `http://${host.includes(':') ? `[${host}]` : host}:${p.PublicPort}/`, target: '_blank', rel: 'noopener noreferrer' }, `${p.PublicPort}→${p.PrivatePort}`)
      : h('span', { class: 'port' }, `${p.PublicPort}→${p.PrivatePort}/${p.Type}`));
  }
  return out.length ? out : '—';
}

// The lifecycle buttons of one container; after reports the new state to refresh the view.
export function lifecycleActions(c, after) {
  const name = containerName(c);
  const running = c.State === 'running';
  const paused = c.State === 'paused';
  const act = (verb, label) => action(label, docker(verb, name), () => guarded(async () => {
    await post(`/api/containers/${encodeURIComponent(c.Id)}/${verb}`);
    await after();
  }, `${label}: ${name}`), { id: verb });
  const out = [];
  if (!running && !paused) out.push(act('start', 'Start'));
  if (running) out.push(act('stop', 'Stop'), act('restart', 'Restart'), act('kill', 'Kill'), act('pause', 'Pause'));
  if (paused) out.push(act('unpause', 'Unpause'));
  out.push(action('Remove', docker('rm', running || paused ? '-f' : null, name), () => guarded(async () => {
    if (!(await confirmDanger('Remove container', `Remove ${name}${running ? ' (it is running: it will be killed)' : ''}?`, 'Remove'))) return;
    await del(`/api/containers/${encodeURIComponent(c.Id)}?force=1`);
    await after(true);
  }, `Removed ${name}`), { danger: true, id: 'remove' }));
  return h('div', { class: 'actions' }, out);
}

function runForm(images, networks, onDone) {
  const image = h('input', { name: 'image', list: 'image-list', required: true, placeholder: 'busybox:latest' });
  const name = h('input', { name: 'name', placeholder: 'optional' });
  const cmd = h('input', { name: 'cmd', placeholder: "e.g. sh -c 'while true; do date; sleep 1; done'" });
  const ports = h('input', { name: 'ports', placeholder: '8080:80 127.0.0.1:5353:53/udp' });
  const env = h('textarea', { name: 'env', rows: 2, placeholder: 'KEY=value, one a line' });
  const volumes = h('textarea', { name: 'volumes', rows: 2, placeholder: 'data:/data or /host/path:/path:ro, one a line' });
  const network = h('select', { name: 'network' }, h('option', { value: '' }, 'default (bridge)'),
    networks.map((n) => h('option', { value: n.Name }, n.Name)));
  const restart = h('select', { name: 'restart' }, ['no', 'always', 'unless-stopped', 'on-failure'].map((r) => h('option', { value: r }, r)));
  const tty = h('input', { type: 'checkbox', name: 'tty' });
  const preview = h('code', { class: 'preview' });
  const values = () => ({
    image: image.value.trim(), name: name.value.trim(), cmd: splitCommand(cmd.value),
    ports: ports.value.split(/[\s,]+/).filter(Boolean), env: env.value.split('\n').map((s) => s.trim()).filter(Boolean),
    volumes: volumes.value.split('\n').map((s) => s.trim()).filter(Boolean),
    network: network.value, restart: restart.value, tty: tty.checked,
  });
  const update = () => { preview.textContent = runCommand(values()); };
  const form = h('form', { class: 'card grid-form', 'aria-label': 'Run a container', oninput: update, onchange: update,
    onsubmit: (ev) => {
      ev.preventDefault();
      guarded(async () => {
        const res = await post('/api/containers', values());
        form.reset();
        update();
        await onDone(res.Id);
      }, 'Container started');
    } },
  h('datalist', { id: 'image-list' }, images.flatMap((i) => (i.RepoTags || [])).filter((t) => t !== '<none>:<none>').map((t) => h('option', { value: t }))),
  field('Image', image), field('Name', name), field('Command', cmd), field('Ports', ports, 'hostPort:containerPort, space-separated'),
  field('Environment', env), field('Volumes', volumes), field('Network', network), field('Restart policy', restart),
  h('div', { class: 'field check' }, tty, h('label', { for: (tty.id = 'run-tty') }, 'Allocate a TTY (-it)')),
  h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary', 'data-action': 'run' }, 'Run'),
    cliButton(() => runCommand(values()), 'run'), preview));
  update();
  return form;
}

export async function containersPage(main) {
  const list = h('div', { 'aria-live': 'polite' });
  const usage = new Map();
  let containers = [];
  const render = () => {
    clear(list).append(table('Containers', ['Name', 'Image', 'State', 'Health', 'Ports', 'CPU', 'Memory', 'Actions'],
      containers.map((c) => {
        const u = usage.get(c.Id);
        return [
          h('a', { href: `#/containers/${encodeURIComponent(c.Id)}`, class: 'strong' }, containerName(c)),
          h('span', { class: 'mono' }, c.Image),
          h('span', {}, badge(c.State), h('small', { class: 'muted block' }, c.Status)),
          healthOf(c.Status) ? badge(healthOf(c.Status)) : '—',
          h('span', { class: 'ports' }, portLinks(c)),
          h('span', { class: 'nowrap' }, u ? `${u.cpu.toFixed(1)} %` : '—'),
          h('span', { class: 'nowrap' }, u ? bytes(u.mem) : '—'),
          lifecycleActions(c, refresh),
        ];
      }), 'No containers yet: run one with the form above.'));
  };
  const refresh = async () => {
    containers = await get('/api/containers');
    render();
    for (const c of containers.filter((x) => x.State === 'running')) {
      get(`/api/containers/${encodeURIComponent(c.Id)}/usage`).then((u) => { usage.set(c.Id, u); render(); }, () => {});
    }
  };
  const [images, networks] = await Promise.all([get('/api/images'), get('/api/networks')]);
  const details = h('details', { class: 'run' }, h('summary', {}, 'Run a container'),
    runForm(images, networks, async (id) => { await refresh(); location.hash = `#/containers/${encodeURIComponent(id)}`; }));
  clear(main).append(pageHeader('Containers',
    h('button', { type: 'button', onclick: refresh }, 'Refresh'),
    h('button', { type: 'button', onclick: () => copyText(docker('ps', '-a')) , 'aria-label': 'Copy docker ps -a' }, 'docker ps -a')),
  details, list, cliLine());
  await refresh();
  // live: the list follows the engine's container events, no polling
  let timer = null;
  const ws = liveSocket('/api/ws/events', {}, { onMessage: (ev) => {
    const e = JSON.parse(ev.data);
    if (e.Type !== 'container') return;
    clearTimeout(timer);
    timer = setTimeout(() => guarded(refresh), 300);
  } });
  onLeave(() => { ws.close(); clearTimeout(timer); });
}
