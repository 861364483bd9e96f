// Small SVG charts drawn from plain data: line charts over time (with an
// optional right-hand axis), stacked bars over time and horizontal bars.
// No library; every element is created with the DOM, so the page's
// Content-Security-Policy needs no inline styles.

const NS = 'http://www.w3.org/2000/svg';
const W = 600, H = 240, PAD = { l: 48, r: 48, t: 10, b: 28 };

export const PALETTE = ['#2f6fde', '#e4572e', '#17a589', '#f3a712', '#8e44ad', '#5d6d7e', '#c0392b', '#16a085', '#d35400', '#7f8c8d'];

function svgEl(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function frame(el, height = H) {
  el.replaceChildren();
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${height}`, role: 'img' });
  el.append(svg);
  return svg;
}

// noData shows a placeholder instead of a chart.
export function noData(el, text = 'no data yet') {
  const d = document.createElement('div');
  d.className = 'nodata';
  d.textContent = text;
  el.replaceChildren(d);
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 4, 8, 10]) if (v <= m * p) return m * p; // quarters stay round
  return 10 * p;
}

export function fmtNum(v) {
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1).replace(/\.0$/, '') + 'M';
  if (Math.abs(v) >= 1e3) return (v / 1e3).toFixed(1).replace(/\.0$/, '') + 'k';
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(Math.abs(v) < 1 ? 2 : 1);
}

function fmtTime(ms, span) {
  const d = new Date(ms);
  if (span > 3 * 86400e3) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

function legend(el, items) {
  const box = document.createElement('div');
  box.className = 'legend';
  for (const it of items) {
    const s = document.createElement('span');
    const i = document.createElement('i');
    i.style.background = it.color;
    s.append(i, document.createTextNode(it.name));
    box.append(s);
  }
  el.append(box);
}

function yAxis(svg, max, x, anchor, fmt, grid) {
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const y = H - PAD.b - ((H - PAD.t - PAD.b) * i) / 4;
    if (grid) svg.append(svgEl('line', { class: 'gridline', x1: PAD.l, x2: W - PAD.r, y1: y, y2: y }));
    svg.append(svgEl('text', { class: 'tick', x, y: y + 3, 'text-anchor': anchor }, fmt(v)));
  }
}

function xAxis(svg, t0, t1, sx) {
  svg.append(svgEl('line', { class: 'axis', x1: PAD.l, x2: W - PAD.r, y1: H - PAD.b, y2: H - PAD.b }));
  const n = 5;
  for (let i = 0; i < n; i++) {
    const t = t0 + ((t1 - t0) * i) / (n - 1 || 1);
    svg.append(svgEl('text', { class: 'tick', x: sx(t), y: H - PAD.b + 16, 'text-anchor': i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle' }, fmtTime(t, t1 - t0)));
  }
}

// lineChart draws series of [time ms, value] points. A series with
// axis: 'right' is scaled on its own right-hand axis. from and to (ms), when
// given, are the period the time axis spans, whatever the data covers.
export function lineChart(el, { series, format = fmtNum, formatRight = fmtNum, from, to }) {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return noData(el);
  const svg = frame(el);
  let t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  if (from != null && to != null && from < to) { t0 = Math.min(t0, from); t1 = Math.max(t1, to); }
  if (t0 === t1) { t0 -= 1800e3; t1 += 1800e3; } // one bucket: show the half hour around it
  const maxOf = (side) => niceMax(Math.max(0, ...series.filter((s) => (s.axis || 'left') === side).flatMap((s) => s.points.map((p) => p[1]))));
  const maxL = maxOf('left'), maxR = maxOf('right');
  const sx = (t) => PAD.l + ((t - t0) / (t1 - t0)) * (W - PAD.l - PAD.r);
  const sy = (v, max) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);
  yAxis(svg, maxL, PAD.l - 6, 'end', format, true);
  if (series.some((s) => s.axis === 'right')) yAxis(svg, maxR, W - PAD.r + 6, 'start', formatRight, false);
  xAxis(svg, t0, t1, sx);
  for (const s of series) {
    const max = s.axis === 'right' ? maxR : maxL;
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    let d = '';
    pts.forEach((p, i) => {
      const x = sx(p[0]).toFixed(1), y = sy(p[1], max).toFixed(1);
      if (s.step && i > 0) d += `H${x}V${y}`;
      else d += `${i ? 'L' : 'M'}${x},${y}`;
    });
    const path = svgEl('path', { class: 'series', d, stroke: s.color });
    if (s.dashed) path.setAttribute('stroke-dasharray', '5 4');
    svg.append(path);
    if (pts.length === 1) svg.append(svgEl('circle', { cx: sx(pts[0][0]), cy: sy(pts[0][1], max), r: 3, fill: s.color }));
  }
  legend(el, series);
}

// stackedBars draws one bar per time bucket, split by series:
// stacks = [{name, color, values: Map(time ms → n)}].
export function stackedBars(el, { times, stacks }) {
  if (times.length === 0 || stacks.length === 0) return noData(el);
  const svg = frame(el);
  const sorted = [...times].sort((a, b) => a - b);
  const totals = sorted.map((t) => stacks.reduce((n, s) => n + (s.values.get(t) || 0), 0));
  const max = niceMax(Math.max(...totals));
  const slot = (W - PAD.l - PAD.r) / sorted.length;
  const bw = Math.max(2, Math.min(40, slot * 0.7));
  const sy = (v) => ((H - PAD.t - PAD.b) * v) / max;
  yAxis(svg, max, PAD.l - 6, 'end', fmtNum, true);
  const t0 = sorted[0], t1 = sorted[sorted.length - 1];
  const sx = (t) => (t1 === t0 ? PAD.l + (W - PAD.l - PAD.r) / 2 : PAD.l + slot / 2 + ((t - t0) / (t1 - t0)) * (W - PAD.l - PAD.r - slot));
  svg.append(svgEl('line', { class: 'axis', x1: PAD.l, x2: W - PAD.r, y1: H - PAD.b, y2: H - PAD.b }));
  const every = Math.ceil(sorted.length / 6);
  sorted.forEach((t, i) => {
    let y = H - PAD.b;
    for (const s of stacks) {
      const v = s.values.get(t) || 0;
      if (!v) continue;
      const h = sy(v);
      y -= h;
      const r = svgEl('rect', { x: sx(t) - bw / 2, y, width: bw, height: h, fill: s.color });
      r.append(svgEl('title', {}, `${s.name}: ${v}`));
      svg.append(r);
    }
    if (i % every === 0) {
      svg.append(svgEl('text', { class: 'tick', x: sx(t), y: H - PAD.b + 16, 'text-anchor': 'middle' }, fmtTime(t, Math.max(t1 - t0, 4 * 86400e3))));
    }
  });
  legend(el, stacks);
}

// hbars draws one horizontal bar per item: [{name, value}].
export function hbars(el, items, color = PALETTE[1]) {
  if (items.length === 0) return noData(el);
  const rowH = 26, height = items.length * rowH + 8, labelW = 220;
  const svg = frame(el, height);
  const max = Math.max(...items.map((i) => i.value), 1);
  items.forEach((it, i) => {
    const y = 4 + i * rowH;
    const name = it.name.length > 34 ? it.name.slice(0, 33) + '…' : it.name;
    const t = svgEl('text', { class: 'tick', x: labelW - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end' }, name);
    t.append(svgEl('title', {}, it.name));
    svg.append(t);
    const w = ((W - labelW - 60) * it.value) / max;
    svg.append(svgEl('rect', { x: labelW, y: y + 4, width: Math.max(w, 1), height: rowH - 10, rx: 3, fill: color }));
    svg.append(svgEl('text', { class: 'tick', x: labelW + w + 6, y: y + rowH / 2 + 4 }, fmtNum(it.value)));
  });
}

// histogram draws a small bar histogram of shares (the luma histogram).
export function histogram(el, bins) {
  const w = 320, h = 60;
  const svg = svgEl('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': 'Brightness histogram' });
  const max = Math.max(...bins, 1e-9);
  const bw = w / bins.length;
  bins.forEach((v, i) => {
    const bh = (v / max) * (h - 2);
    const g = Math.round((255 * i) / (bins.length - 1));
    svg.append(svgEl('rect', { x: i * bw + 0.5, y: h - bh, width: bw - 1, height: bh, fill: `rgb(${g},${g},${g})`, stroke: '#98a2b3', 'stroke-width': 0.5 }));
  });
  el.replaceChildren(svg);
}
