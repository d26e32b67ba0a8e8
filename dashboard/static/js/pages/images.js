// Images: list, history, pull with per-layer progress, tag, remove, prune, build, load, export.
import { del, get, post, postStream } from '../api.js';
import { docker } from '../cli.js';
import { action, bytes, ago, clear, cliButton, cliLine, confirmDanger, dialog, field, guarded, h, pageHeader, pre, shortId, table, toast } from '../ui.js';

function tagsOf(i) { return (i.RepoTags || []).filter((t) => t !== '<none>:<none>'); }

function pullForm(refresh) {
  const ref = h('input', { name: 'image', required: true, placeholder: '127.0.0.1:5000/app:1.0' });
  const layers = h('div', { class: 'layers', 'aria-live': 'polite', id: 'pull-progress' });
  const status = h('p', { class: 'muted', id: 'pull-status' });
  const rows = new Map();
  const onLine = (m) => {
    if (m.error) throw new Error(m.error);
    if (!m.id || !m.progressDetail && !/Pull complete|Already exists|Download complete|Waiting|Pulling fs layer|Verifying|Extracting|Downloading/.test(m.status || '')) {
      status.textContent = m.status || '';
      return;
    }
    let row = rows.get(m.id);
    if (!row) {
      row = { bar: h('progress', { max: 1, value: 0, 'aria-label': `layer ${m.id}` }), text: h('span', {}) };
      rows.set(m.id, row);
      layers.append(h('div', { class: 'layer' }, h('code', {}, m.id), row.bar, row.text));
    }
    const d = m.progressDetail || {};
    if (d.total) { row.bar.max = d.total; row.bar.value = d.current || 0; }
    if (/complete|exists/i.test(m.status || '')) { row.bar.max = 1; row.bar.value = 1; }
    row.text.textContent = `${m.status}${d.total ? ` ${bytes(d.current || 0)} / ${bytes(d.total)}` : ''}`;
  };
  const form = h('form', { class: 'card inline-form', 'aria-label': 'Pull an image', onsubmit: (ev) => {
    ev.preventDefault();
    rows.clear();
    clear(layers);
    status.textContent = `pulling ${ref.value}…`;
    guarded(async () => {
      await postStream('/api/images/pull', { image: ref.value.trim() }, onLine);
      status.textContent = `pulled ${ref.value.trim()}`;
      await refresh();
    }, 'Pull finished');
  } },
  h('h2', {}, 'Pull'), field('Image', ref), h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', 'data-action': 'pull' }, 'Pull'),
  cliButton(() => docker('pull', ref.value.trim() || 'IMAGE'), 'pull')), status, layers);
  return form;
}

function buildForm(refresh) {
  const file = h('input', { type: 'file', required: true, accept: '.tar,application/x-tar,*' });
  const tag = h('input', { name: 'tag', placeholder: 'myapp:latest' });
  const out = h('pre', { class: 'logs short', role: 'log', 'aria-live': 'polite', 'aria-label': 'Build log', id: 'build-log' });
  const form = h('form', { class: 'card inline-form', 'aria-label': 'Build an image', onsubmit: (ev) => {
    ev.preventDefault();
    const f = file.files[0];
    if (!f) return;
    const kind = f.name.endsWith('.tar') ? 'tar' : 'dockerfile';
    out.textContent = '';
    guarded(async () => {
      const q = new URLSearchParams({ kind, t: tag.value.trim() });
      await postStream(`/api/images/build?${q}`, f, (m) => {
        if (m.error) throw new Error(m.error);
        if (m.stream) out.textContent += m.stream;
        out.scrollTop = out.scrollHeight;
      });
      await refresh();
    }, 'Build finished');
  } },
  h('h2', {}, 'Build'), field('Dockerfile, or a .tar of the context', file), field('Tag', tag),
  h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', 'data-action': 'build' }, 'Build'),
  cliButton(() => docker('build', tag.value.trim() ? ['-t', tag.value.trim()] : [], '.'), 'build')), out);
  return form;
}

function loadForm(refresh) {
  const file = h('input', { type: 'file', required: true, accept: '.tar' });
  const out = h('p', { class: 'muted' });
  return h('form', { class: 'card inline-form', 'aria-label': 'Import images', onsubmit: (ev) => {
    ev.preventDefault();
    if (!file.files[0]) return;
    guarded(async () => {
      await postStream('/api/images/load', file.files[0], (m) => { if (m.error) throw new Error(m.error); out.textContent = m.stream || m.status || ''; });
      await refresh();
    }, 'Images loaded');
  } }, h('h2', {}, 'Import'), field('Image archive (docker save)', file), h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Load'),
  cliButton(docker('load', '-i', 'images.tar'), 'load')), out);
}

async function history(i) {
  const layers = await get(`/api/images/${encodeURIComponent(i.Id)}/history`);
  await dialog(`History of ${tagsOf(i)[0] || shortId(i.Id)}`, table('Layers', ['Created', 'Created by', 'Size'],
    layers.map((l) => [l.Created ? ago(l.Created) : '—', h('code', { class: 'wrap' }, l.CreatedBy || ''), bytes(l.Size)])));
}

async function tagImage(i, refresh) {
  const input = h('input', { placeholder: 'repo:tag', required: true });
  const value = await dialog('Tag image', field('New name', input), [{ label: 'Cancel', value: 'cancel' }, { label: 'Tag', value: 'ok', primary: true }]);
  if (value !== 'ok' || !input.value.trim()) return;
  await guarded(async () => { await post(`/api/images/${encodeURIComponent(i.Id)}/tag`, { target: input.value.trim() }); await refresh(); }, 'Tagged');
}

export async function imagesPage(main) {
  const list = h('div', {});
  const refresh = async () => {
    const images = await get('/api/images');
    clear(list).append(table('Images', ['Tags', 'ID', 'Size', 'Created', 'Actions'], images.map((i) => {
      const name = tagsOf(i)[0] || shortId(i.Id);
      return [
        tagsOf(i).length ? h('span', {}, tagsOf(i).map((t) => h('code', { class: 'tag' }, t))) : h('span', { class: 'muted' }, '<none>'),
        h('code', {}, shortId(i.Id)), bytes(i.Size), ago(i.Created),
        h('div', { class: 'actions' },
          action('History', docker('history', name), () => guarded(() => history(i)), { id: 'history' }),
          action('Tag', docker('tag', name, 'NEW:TAG'), () => tagImage(i, refresh), { id: 'tag' }),
          h('span', { class: 'action' }, h('a', { class: 'button', href: `/api/images/${encodeURIComponent(i.Id)}/export`, download: `${name.replace(/[/:]/g, '_')}.tar` }, 'Export'),
            cliButton(docker('save', '-o', `${name.replace(/[/:]/g, '_')}.tar`, name), 'export')),
          action('Remove', docker('rmi', name), () => guarded(async () => {
            if (!(await confirmDanger('Remove image', `Remove ${name}?`, 'Remove'))) return;
            await del(`/api/images/${encodeURIComponent(tagsOf(i).length === 1 ? tagsOf(i)[0] : i.Id)}`);
            await refresh();
          }, `Removed ${name}`), { danger: true, id: 'remove' })),
      ];
    }), 'No images: pull or build one.'));
  };
  const prune = () => guarded(async () => {
    if (!(await confirmDanger('Prune images', 'Remove all dangling images?', 'Prune'))) return;
    const r = await post('/api/images/prune');
    toast(`Reclaimed ${bytes(r.SpaceReclaimed || 0)}`);
    await refresh();
  });
  clear(main).append(pageHeader('Images', h('span', { class: 'action' }, h('button', { type: 'button', onclick: prune }, 'Prune'), cliButton(docker('image', 'prune', '-f'), 'prune'))),
    h('div', { class: 'forms' }, pullForm(refresh), buildForm(refresh), loadForm(refresh)), list, cliLine());
  await refresh();
}

