// Live stats charts (uPlot): CPU %, memory, network and block I/O rates, last 120 samples.
import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { bytes, h } from '../ui.js';

const KEEP = 120;

function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888'; }

function chart(title, series, fmt) {
  const key = h('span', { class: 'key' }, series.map(([label, color]) => {
    const k = h('span', {}, `■ ${label}`);
    k.style.color = css(color);
    return k;
  }));
  const el = h('figure', { class: 'chart', 'aria-label': `${title} chart` }, h('figcaption', {}, title, key));
  const axis = { stroke: css('--muted'), grid: { stroke: css('--border') }, ticks: { stroke: css('--border') } };
  const opts = {
    width: 400, height: 180, legend: { show: false },
    scales: { x: { time: true } },
    axes: [axis, { ...axis, size: 70, values: (u, vals) => vals.map(fmt) }],
    series: [{}, ...series.map(([label, color]) => ({ label, stroke: css(color), width: 2, value: (u, v) => (v == null ? '—' : fmt(v)) }))],
  };
  const data = [[], ...series.map(() => [])];
  const plot = new uPlot(opts, data, el);
  return { el, plot, data };
}

export function statsCharts() {
  const rate = (v) => `${bytes(v)}/s`;
  const cpu = chart('CPU', [['CPU %', '--accent']], (v) => `${v < 1 ? v.toFixed(2) : v.toFixed(1)} %`);
  const mem = chart('Memory', [['used', '--accent2']], bytes);
  const net = chart('Network', [['received', '--accent'], ['sent', '--accent2']], rate);
  const blk = chart('Block I/O', [['read', '--accent'], ['written', '--accent2']], rate);
  const all = [cpu, mem, net, blk];
  const element = h('div', { class: 'charts' }, all.map((c) => c.el));
  let last = null;
  // each chart fills its grid cell, whatever the window's width
  const observer = new ResizeObserver(() => {
    for (const c of all) c.plot.setSize({ width: Math.max(200, c.el.clientWidth - 16), height: 180 });
  });
  observer.observe(element);
  return {
    element,
    add(s) {
      const t = s.read ? Date.parse(s.read) / 1000 : Date.now() / 1000;
      const dt = last ? Math.max(0.001, t - last.t) : 1;
      const push = (c, ...vals) => {
        c.data[0].push(t);
        vals.forEach((v, i) => c.data[i + 1].push(v));
        if (c.data[0].length > KEEP) c.data.forEach((col) => col.shift());
        c.plot.setData(c.data);
      };
      push(cpu, s.cpu);
      push(mem, s.mem);
      push(net, last ? Math.max(0, (s.rx - last.rx) / dt) : 0, last ? Math.max(0, (s.tx - last.tx) / dt) : 0);
      push(blk, last ? Math.max(0, (s.blk_read - last.blk_read) / dt) : 0, last ? Math.max(0, (s.blk_write - last.blk_write) / dt) : 0);
      last = { ...s, t };
      element.dataset.points = String(cpu.data[0].length);
    },
    destroy() { observer.disconnect(); for (const c of all) c.plot.destroy(); },
  };
}
