// Events timeline (live), system information with disk usage, and the compatibility table.
import { get, liveSocket } from '../api.js';
import { docker } from '../cli.js';
import { onLeave } from '../main.js';
import { bytes, clear, cliButton, cliLine, h, pageHeader, table } from '../ui.js';

function shortName(id) { return /^(sha256:)?[0-9a-f]{64}$/.test(id) ? id.replace('sha256:', '').slice(0, 12) : id; }

export async function eventsPage(main) {
  const list = h('ol', { class: 'timeline', 'aria-live': 'polite', 'aria-label': 'Engine events, newest first', id: 'events' });
  const filter = h('select', { 'aria-label': 'Event type' }, ['all', 'container', 'image', 'network', 'volume'].map((t) => h('option', { value: t }, t)));
  const status = h('span', { class: 'muted' }, 'connecting…');
  clear(main).append(pageHeader('Events', filter, cliButton(() => docker('events', filter.value !== 'all' ? ['--filter', `type=${filter.value}`] : []), 'events'), status),
    h('p', { class: 'muted' }, 'What the engine does, as it happens (its /events stream).'), list, cliLine());
  // the last hour from the engine's own event log, then live
  const ws = liveSocket('/api/ws/events', { since: String(Math.floor(Date.now() / 1000) - 3600) }, { onOpen: () => clear(list), onState: (s) => { status.textContent = s; }, onMessage: (ev) => {
    const e = JSON.parse(ev.data);
    if (e.error) { status.textContent = e.error; return; }
    if (filter.value !== 'all' && e.Type !== filter.value) return;
    const attrs = (e.Actor && e.Actor.Attributes) || {};
    const time = new Date((e.timeNano ? e.timeNano / 1e6 : e.time * 1000)).toLocaleTimeString();
    list.prepend(h('li', {}, h('time', {}, time), h('span', { class: `badge ${e.Type}` }, e.Type), h('strong', {}, e.Action),
      h('span', { class: 'mono' }, attrs.name || shortName((e.Actor && e.Actor.ID) || '')), attrs.image ? h('span', { class: 'muted' }, attrs.image) : null));
    while (list.children.length > 500) list.lastChild.remove();
  } });
  onLeave(() => ws.close());
}

function usageChart(df) {
  const parts = [
    ['Images', (df.Images || []).reduce((a, i) => a + (i.Size || 0), 0), '--accent'],
    ['Containers', (df.Containers || []).reduce((a, c) => a + (c.SizeRw || 0), 0), '--accent2'],
    ['Volumes', (df.Volumes || []).reduce((a, v) => a + ((v.UsageData && v.UsageData.Size > 0) ? v.UsageData.Size : 0), 0), '--accent3'],
    ['Build cache', (df.BuildCache || []).reduce((a, b) => a + (b.Size || 0), 0), '--muted'],
  ];
  const max = Math.max(1, ...parts.map((p) => p[1]));
  return h('figure', { class: 'bars', 'aria-label': 'Disk usage chart' }, h('figcaption', {}, 'Disk usage'),
    parts.map(([label, size, color]) => {
      const bar = h('span', { class: 'bar' });
      bar.style.width = `${Math.max(0.5, (size / max) * 100)}%`;
      bar.style.background = `var(${color})`;
      return h('div', { class: 'bar-row' }, h('span', { class: 'bar-label' }, label), h('span', { class: 'bar-track' }, bar), h('span', { class: 'bar-value' }, bytes(size)));
    }));
}

export async function systemPage(main) {
  const { info, version, df } = await get('/api/system');
  const facts = [
    ['Engine', `${version.Platform ? version.Platform.Name : 'Docker Engine'} ${version.Version} (API ${version.ApiVersion}, min ${version.MinAPIVersion})`],
    ['Components', (version.Components || []).map((c) => `${c.Name} ${c.Version}`).join(', ')],
    ['Host', `${info.Name} · ${info.OperatingSystem} · kernel ${info.KernelVersion} · ${info.Architecture}`],
    ['CPUs / memory', `${info.NCPU} · ${bytes(info.MemTotal)}`],
    ['Containers', `${info.Containers} (${info.ContainersRunning} running, ${info.ContainersPaused} paused, ${info.ContainersStopped} stopped)`],
    ['Images', String(info.Images)],
    ['Storage driver', info.Driver], ['Cgroups', `${info.CgroupDriver} v${info.CgroupVersion}`],
    ['Data root', info.DockerRootDir], ['Security options', (info.SecurityOptions || []).join(', ')],
  ];
  clear(main).append(pageHeader('System', cliButton(docker('info'), 'info'), cliButton(docker('system', 'df', '-v'), 'system df')),
    h('dl', { class: 'facts' }, facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v || '—')])),
    usageChart(df),
    table('Images by size', ['Image', 'Size', 'Containers'], (df.Images || []).slice().sort((a, b) => b.Size - a.Size).slice(0, 10)
      .map((i) => [(i.RepoTags || [])[0] || i.Id.slice(7, 19), bytes(i.Size), String(i.Containers)])), cliLine());
}

// Render the subset of Markdown that docs/compat.md uses: headings, paragraphs, tables, code.
function inline(text) {
  const out = [];
  const re = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*]+)\*|\[([^\]]+)\]\(([^)]+)\)/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1] !== undefined) out.push(h('code', {}, m[1]));
    else if (m[2] !== undefined) out.push(h('strong', {}, m[2]));
    else if (m[3] !== undefined) out.push(h('em', {}, m[3]));
    else out.push(m[4]);
    last = re.lastIndex;
  }
  out.push(text.slice(last));
  return out;
}

function cells(line) { return line.trim().replace(/^\|/, '').replace(/\|$/, '').split(/(?<!\\)\|/).map((c) => c.trim()); }

export function renderMarkdown(md) {
  const out = [];
  const lines = md.split('\n');
  let para = [];
  const flush = () => { if (para.length) out.push(h('p', {}, inline(para.join(' ')))); para = []; };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^<!--/.test(line.trim())) continue;
    const hm = /^(#{1,4})\s+(.*)$/.exec(line);
    if (hm) { flush(); out.push(h(`h${Math.min(4, hm[1].length + 1)}`, {}, inline(hm[2]))); continue; }
    if (line.trim().startsWith('|') && lines[i + 1] && /^\|[-|: ]+\|$/.test(lines[i + 1].trim())) {
      flush();
      const head = cells(line);
      const rows = [];
      i += 2;
      while (i < lines.length && lines[i].trim().startsWith('|')) rows.push(cells(lines[i++]));
      i--;
      out.push(h('div', { class: 'table-wrap' }, h('table', { class: 'compat' },
        h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, inline(c))))),
        h('tbody', {}, rows.map((r) => h('tr', { 'data-status': (r[head.indexOf('Status')] || '').trim() }, r.map((c, j) => h('td', {}, head[j] === 'Status' ? h('span', { class: `badge ${c}` }, c) : inline(c)))))))));
      continue;
    }
    if (!line.trim()) { flush(); continue; }
    para.push(line.trim());
  }
  flush();
  return out;
}

export async function compatPage(main) {
  const resp = await fetch('/api/compat', { credentials: 'same-origin' });
  const md = await resp.text();
  const search = h('input', { type: 'search', placeholder: 'filter rows', 'aria-label': 'Filter rows' });
  const body = h('div', { class: 'markdown' }, renderMarkdown(md));
  search.addEventListener('input', () => {
    const q = search.value.toLowerCase();
    for (const tr of body.querySelectorAll('tbody tr')) tr.hidden = q && !tr.textContent.toLowerCase().includes(q);
  });
  clear(main).append(pageHeader('Compatibility', search), body);
}
