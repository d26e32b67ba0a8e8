// Networks and volumes: list (with the containers using them), inspect, create, remove, prune.
import { del, get, post } from '../api.js';
import { docker } from '../cli.js';
import { action, bytes, clear, cliButton, cliLine, confirmDanger, dialog, field, guarded, h, pageHeader, pre, shortId, table, toast } from '../ui.js';
import { containerName } from './containers.js';

function users(containers, test) {
  const names = containers.filter(test).map(containerName);
  return names.length ? names.map((n) => h('span', { class: 'tag' }, n)) : h('span', { class: 'muted' }, 'none');
}

function pruneButton(what, cmd, refresh) {
  return h('span', { class: 'action' }, h('button', { type: 'button', onclick: () => guarded(async () => {
    if (!(await confirmDanger(`Prune ${what}`, `Remove all unused ${what}?`, 'Prune'))) return;
    const r = await post(`/api/${what}/prune`);
    toast(`Removed ${(r.NetworksDeleted || r.VolumesDeleted || []).length} ${what}${r.SpaceReclaimed ? `, reclaimed ${bytes(r.SpaceReclaimed)}` : ''}`);
    await refresh();
  }) }, 'Prune'), cliButton(cmd, `prune ${what}`));
}

export async function networksPage(main) {
  const list = h('div', {});
  const refresh = async () => {
    const [networks, containers] = await Promise.all([get('/api/networks'), get('/api/containers')]);
    clear(list).append(table('Networks', ['Name', 'ID', 'Driver', 'Subnet', 'Containers', 'Actions'], networks.map((n) => [
      h('strong', {}, n.Name), h('code', {}, shortId(n.Id)), n.Driver,
      ((n.IPAM && n.IPAM.Config) || []).map((c) => c.Subnet).filter(Boolean).join(', ') || '—',
      users(containers, (c) => Object.keys((c.NetworkSettings && c.NetworkSettings.Networks) || {}).includes(n.Name)),
      h('div', { class: 'actions' },
        action('Inspect', docker('network', 'inspect', n.Name), () => guarded(async () => dialog(`Network ${n.Name}`, pre(JSON.stringify(await get(`/api/networks/${encodeURIComponent(n.Id)}`), null, 2), { class: 'json' }))), { id: 'inspect' }),
        ['bridge', 'host', 'none'].includes(n.Name) ? null : action('Remove', docker('network', 'rm', n.Name), () => guarded(async () => {
          if (!(await confirmDanger('Remove network', `Remove network ${n.Name}?`, 'Remove'))) return;
          await del(`/api/networks/${encodeURIComponent(n.Id)}`);
          await refresh();
        }, `Removed ${n.Name}`), { danger: true, id: 'remove' })),
    ])));
  };
  const name = h('input', { name: 'name', required: true });
  const driver = h('select', { name: 'driver' }, ['bridge', 'macvlan', 'ipvlan'].map((d) => h('option', { value: d }, d)));
  const subnet = h('input', { name: 'subnet', placeholder: 'optional, e.g. 10.214.180.0/24' });
  const cmd = () => docker('network', 'create', driver.value !== 'bridge' ? ['--driver', driver.value] : [], subnet.value.trim() ? ['--subnet', subnet.value.trim()] : [], name.value.trim() || 'NAME');
  const form = h('form', { class: 'card inline-form', 'aria-label': 'Create a network', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(async () => {
      await post('/api/networks', { name: name.value.trim(), driver: driver.value, subnet: subnet.value.trim() });
      form.reset();
      await refresh();
    }, 'Network created');
  } }, h('h2', {}, 'Create a network'), field('Name', name), field('Driver', driver), field('Subnet', subnet),
  h('button', { type: 'submit', class: 'primary', 'data-action': 'create' }, 'Create'), cliButton(cmd, 'network create'));
  clear(main).append(pageHeader('Networks', pruneButton('networks', docker('network', 'prune', '-f'), refresh)), form, list, cliLine());
  await refresh();
}

export async function volumesPage(main) {
  const list = h('div', {});
  const refresh = async () => {
    const [volumes, containers] = await Promise.all([get('/api/volumes'), get('/api/containers')]);
    clear(list).append(table('Volumes', ['Name', 'Driver', 'Mount point', 'Used by', 'Actions'], volumes.map((v) => [
      h('strong', { class: 'mono' }, v.Name.length > 24 ? shortId(v.Name) + '…' : v.Name), v.Driver, h('code', { class: 'wrap' }, v.Mountpoint),
      users(containers, (c) => (c.Mounts || []).some((m) => m.Type === 'volume' && m.Name === v.Name)),
      h('div', { class: 'actions' },
        action('Inspect', docker('volume', 'inspect', v.Name), () => guarded(async () => dialog(`Volume ${v.Name}`, pre(JSON.stringify(await get(`/api/volumes/${encodeURIComponent(v.Name)}`), null, 2), { class: 'json' }))), { id: 'inspect' }),
        action('Remove', docker('volume', 'rm', v.Name), () => guarded(async () => {
          if (!(await confirmDanger('Remove volume', `Remove volume ${v.Name} and its data?`, 'Remove'))) return;
          await del(`/api/volumes/${encodeURIComponent(v.Name)}`);
          await refresh();
        }, `Removed ${v.Name}`), { danger: true, id: 'remove' })),
    ]), 'No volumes.'));
  };
  const name = h('input', { name: 'name', placeholder: 'optional: a random name otherwise' });
  const form = h('form', { class: 'card inline-form', 'aria-label': 'Create a volume', onsubmit: (ev) => {
    ev.preventDefault();
    guarded(async () => {
      await post('/api/volumes', { name: name.value.trim() });
      form.reset();
      await refresh();
    }, 'Volume created');
  } }, h('h2', {}, 'Create a volume'), field('Name', name),
  h('button', { type: 'submit', class: 'primary', 'data-action': 'create' }, 'Create'), cliButton(() => docker('volume', 'create', name.value.trim() || null), 'volume create'));
  clear(main).append(pageHeader('Volumes', pruneButton('volumes', docker('volume', 'prune', '-f'), refresh)), form, list, cliLine());
  await refresh();
}
