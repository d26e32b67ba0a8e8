// Loads the app. Chrome cuts requests in flight when a network interface appears (each
// container start adds one); a module that failed to load stays failed in this document, so
// the page is reloaded instead (a few times at most).
import('./main.js').catch(() => {
  const n = Number(sessionStorage.getItem('pydd-reloads') || 0);
  if (n < 3) {
    sessionStorage.setItem('pydd-reloads', String(n + 1));
    setTimeout(() => location.reload(), 300 * (n + 1));
  } else {
    sessionStorage.removeItem('pydd-reloads');
    const p = document.createElement('p');
    p.className = 'error';
    p.textContent = 'The dashboard could not be loaded: reload the page.';
    document.getElementById('main').append(p);
  }
});
