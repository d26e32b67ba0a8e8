// Entry point: log in with the token from the URL (or the form), then route by location.hash.
import { ApiError, get, post, setCsrf } from './api.js';
import { clear, field, h, toast } from './ui.js';
import { containersPage } from './pages/containers.js';
import { containerPage } from './pages/container.js';
import { imagesPage } from './pages/images.js';
import { networksPage, volumesPage } from './pages/netvol.js';
import { compatPage, eventsPage, systemPage } from './pages/system.js';

const main = document.getElementById('main');
let cleanup = [];
let started = false;

// Pages register what must stop when the user leaves (websockets, timers).
export function onLeave(fn) { cleanup.push(fn); }

const routes = [
  [/^#\/containers\/([^/]+)(?:\/(\w+))?$/, (m, view) => containerPage(view, decodeURIComponent(m[1]), m[2] || 'overview')],
  [/^#\/containers$/, (m, view) => containersPage(view)],
  [/^#\/images$/, (m, view) => imagesPage(view)],
  [/^#\/networks$/, (m, view) => networksPage(view)],
  [/^#\/volumes$/, (m, view) => volumesPage(view)],
  [/^#\/events$/, (m, view) => eventsPage(view)],
  [/^#\/system$/, (m, view) => systemPage(view)],
  [/^#\/compat$/, (m, view) => compatPage(view)],
];

async function route() {
  for (const fn of cleanup.splice(0)) { try { fn(); } catch (e) { /* already gone */ } }
  const hash = location.hash || '#/containers';
  const section = hash.split('/')[1];
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  for (const [re, render] of routes) {
    const m = hash.match(re);
    if (m) {
      // each visit renders into its own element: a slower earlier page cannot overwrite it
      const view = h('div', { class: 'view' });
      clear(main).append(view);
      try {
        await render(m, view);
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return showLogin();
        view.append(h('p', { class: 'error', role: 'alert' }, e.message || String(e)));
      }
      return;
    }
  }
  location.hash = '#/containers';
}

function showLogin(message) {
  document.getElementById('nav').hidden = true;
  document.getElementById('logout').hidden = true;
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true });
  const form = h('form', { class: 'login card', onsubmit: async (ev) => {
    ev.preventDefault();
    await login(input.value.trim());
  } },
  h('h1', {}, 'Log in'),
  h('p', {}, 'Paste the access token that pydockerd-dashboard printed (also in dashboard.token under the exec root).'),
  field('Access token', input),
  message ? h('p', { class: 'error', role: 'alert' }, message) : null,
  h('button', { class: 'primary', type: 'submit' }, 'Log in'));
  clear(main).append(form);
  input.focus();
}

async function login(token) {
  try {
    const { csrf } = await post('/api/login', { token });
    setCsrf(csrf);
    await start();
  } catch (e) {
    showLogin(e.status === 401 ? 'That token is not valid.' : e.message);
  }
}

async function start() {
  const session = await get('/api/session');
  setCsrf(session.csrf);
  document.getElementById('engine').textContent = session.engine;
  document.getElementById('nav').hidden = false;
  document.getElementById('logout').hidden = false;
  if (!started) window.addEventListener('hashchange', route);
  started = true;
  if (!location.hash || location.hash.startsWith('#token=')) history.replaceState(null, '', '#/containers');
  await route();
}

document.getElementById('logout').addEventListener('click', async () => {
  try { await post('/api/logout'); } catch (e) { /* gone already */ }
  location.replace('/');
});

async function boot() {
  const m = location.hash.match(/^#token=([A-Za-z0-9_-]+)/);
  if (m) {
    history.replaceState(null, '', location.pathname);  // the token leaves the address bar
    return login(m[1]);
  }
  try {
    await start();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showLogin();
    else toast(e.message, 'error');
  }
}

sessionStorage.removeItem('pydd-reloads');
boot();
