// The docker command equivalent to each dashboard action ("copy as CLI").
export function quote(s) {
  s = String(s);
  if (s === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return "'" + s.replace(/'/g, `'"'"'`) + "'";
}

export function docker(...args) {
  return ['docker', ...args.flat().filter((a) => a !== null && a !== undefined).map(quote)].join(' ');
}

export function runCommand(form) {
  const args = ['run', '-d'];
  if (form.name) args.push('--name', form.name);
  if (form.tty) args.push('-it');
  for (const p of form.ports) args.push('-p', p);
  for (const e of form.env) args.push('-e', e);
  for (const v of form.volumes) args.push('-v', v);
  if (form.network) args.push('--network', form.network);
  if (form.restart && form.restart !== 'no') args.push('--restart', form.restart);
  args.push(form.image || 'IMAGE', ...form.cmd);
  return docker(args);
}

// Split a command line as a POSIX shell would (quotes and backslashes; no expansion).
export function splitCommand(text) {
  const out = [];
  let cur = null;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      cur = (cur || '') + text.slice(i + 1, end < 0 ? text.length : end);
      i = end < 0 ? text.length : end + 1;
    } else if (c === '"') {
      i++;
      cur = cur || '';
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        cur += text[i++];
      }
      i++;
    } else if (c === '\\' && i + 1 < text.length) {
      cur = (cur || '') + text[i + 1];
      i += 2;
    } else if (/\s/.test(c)) {
      if (cur !== null) { out.push(cur); cur = null; }
      i++;
    } else {
      cur = (cur || '') + c;
      i++;
    }
  }
  if (cur !== null) out.push(cur);
  return out;
}
