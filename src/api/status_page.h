#pragma once

// GET /status: the pipeline drawn as its five stages, refreshed every second from
// /status.json (published in Redis by `pdv monitor`), and charts of its last 15 minutes
// (freshness p50/p99, each stage's rate and lag) drawn in the page as SVG. Data is set
// with textContent and SVG attributes only, and the page has no style attribute: its
// Content-Security-Policy (StatusPageContentSecurityPolicy) allows nothing but this
// page's own <script> and <style> (by hash) and fetches of this origin.

#include <string>

namespace pdv::api {

inline constexpr char kStatusPageHtml[] = R"html(<!doctype html>
<html lang="pt-BR">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pdv · status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; background: #f6f7f9; color: #1d2330; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  #updated { color: #667; margin-bottom: 20px; }
  #pipeline { display: flex; align-items: stretch; gap: 0; flex-wrap: wrap; }
  .stage { background: #fff; border-radius: 8px; border-top: 6px solid #999; padding: 12px 14px;
           width: 170px; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
  .stage.ok { border-top-color: #2e9d4f; } .stage.lagging { border-top-color: #e0a100; }
  .stage.waiting { border-top-color: #7a8aa0; } .stage.down { border-top-color: #d33a2c; }
  .arrow { align-self: center; font-size: 26px; color: #8893a5; padding: 0 8px; }
  .name { font-weight: 600; font-size: 16px; } .health { float: right; font-size: 12px; text-transform: uppercase; }
  .detail { color: #667; font-size: 12px; min-height: 32px; margin: 4px 0 8px; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 8px; margin: 0; }
  dt { color: #667; } dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
  #freshness { margin-top: 24px; background: #fff; border-radius: 8px; padding: 14px;
               box-shadow: 0 1px 3px rgba(0,0,0,.12); max-width: 560px; }
  #freshness .big { font-size: 28px; font-weight: 600; margin-right: 18px; }
  #error { color: #d33a2c; margin-top: 12px; }
  #quantiles { margin-top: 8px; } #p99 { margin-left: 24px; } #probes { color: #667; margin-top: 6px; }
  .chart { margin-top: 16px; background: #fff; border-radius: 8px; padding: 12px 14px;
           box-shadow: 0 1px 3px rgba(0,0,0,.12); max-width: 760px; }
  .chart svg { width: 100%; height: 150px; display: block; }
  .legend span { margin-right: 14px; font-size: 12px; } .legend i { display: inline-block;
           width: 10px; height: 3px; margin-right: 4px; vertical-align: middle; }
</style>
</head>
<body>
<h1>pdv · pipeline</h1>
<div id="updated">loading…</div>
<div id="pipeline"></div>
<div id="freshness">
  <div><b>Freshness</b>: OLTP commit → API answer, measured every second by a probe</div>
  <div id="quantiles">
    <span class="big" id="p50">–</span><span>p50</span>
    <span class="big" id="p99">–</span><span>p99</span>
  </div>
  <div id="probes"></div>
</div>
<div class="chart"><b>Freshness, last 15 minutes</b> (ms)
  <svg id="chart-freshness" viewBox="0 0 720 150" preserveAspectRatio="none"></svg>
  <div class="legend" id="legend-freshness"></div></div>
<div class="chart"><b>Rate per stage</b> (rows or requests/s)
  <svg id="chart-rate" viewBox="0 0 720 150" preserveAspectRatio="none"></svg>
  <div class="legend" id="legend-rate"></div></div>
<div class="chart"><b>Lag per stage</b> (s)
  <svg id="chart-lag" viewBox="0 0 720 150" preserveAspectRatio="none"></svg>
  <div class="legend" id="legend-lag"></div></div>
<div id="error"></div>
<script>
const fmt = (v, digits) => v === null || v === undefined ? '–'
  : Number(v).toLocaleString('pt-BR', {maximumFractionDigits: digits});
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function render(s) {
  const pipe = document.getElementById('pipeline');
  pipe.replaceChildren();
  (s.stages || []).forEach((st, i) => {
    if (i > 0) pipe.appendChild(el('div', 'arrow', '→'));
    const box = el('div', 'stage ' + st.health);
    box.id = 'stage-' + st.name;
    const head = el('div', 'name', st.name);
    head.appendChild(el('span', 'health', st.health));
    box.appendChild(head);
    box.appendChild(el('div', 'detail', st.detail || ''));
    // Active/standby: the lease holder's token and how many wait.
    const inst = st.instances || [];
    if (inst.length) {
      const active = inst.filter(x => x.role === 'active');
      const standby = inst.length - active.length;
      const text = (active.length ? 'active (lease ' + active[0].token + ')' : 'no active instance') +
                   (standby ? ', ' + standby + ' standby' : '');
      const line = el('div', 'detail', text);
      line.dataset.field = 'instances';
      box.appendChild(line);
    }
    const dl = el('dl');
    [['position', st.position === null ? '–' : st.position], ['rows', fmt(st.rows, 0)],
     ['rate/s', fmt(st.rate, 1)], ['lag s', fmt(st.lag_seconds, 3)],
     ['lag rows', fmt(st.lag_rows, 0)]].forEach(([k, v]) => {
      dl.appendChild(el('dt', '', k));
      const dd = el('dd', '', v);
      dd.dataset.field = k;
      dl.appendChild(dd);
    });
    box.appendChild(dl);
    pipe.appendChild(box);
  });
  const f = s.freshness || {};
  document.getElementById('p50').textContent = f.samples ? fmt(f.p50_ms, 1) + ' ms' : '–';
  document.getElementById('p99').textContent = f.samples ? fmt(f.p99_ms, 1) + ' ms' : '–';
  document.getElementById('probes').textContent = f.samples
    ? `last ${fmt(f.last_ms, 1)} ms · ${f.samples} probes · ${f.missed} missed`
    : 'no probe results yet (is pdv monitor running?)';
  document.getElementById('updated').textContent = 'updated ' + (s.generated_at || '–');
}
// Lines over the last 15 minutes, drawn here (SVG, nothing fetched from elsewhere).
const colors = ['#2e6fd3', '#d33a2c', '#2e9d4f', '#e0a100', '#7a4fc9', '#0f9aa8'];
function chart(id, series) {
  const svg = document.getElementById(id), ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren();
  const legend = document.getElementById(id.replace('chart', 'legend'));
  legend.replaceChildren();
  const all = series.flatMap(s => s.points.map(p => p[1])).filter(v => v !== null);
  const times = series.flatMap(s => s.points.map(p => p[0]));
  if (!times.length) return;
  const t1 = Math.max(...times), t0 = Math.min(t1 - 900, Math.min(...times));
  const top = Math.max(1e-9, ...all) * 1.1;
  const grid = document.createElementNS(ns, 'line');
  [['x1', 0], ['y1', 149], ['x2', 720], ['y2', 149], ['stroke', '#ccd']].forEach(
    ([k, v]) => grid.setAttribute(k, v));
  svg.appendChild(grid);
  series.forEach((s, i) => {
    const pts = s.points.filter(p => p[1] !== null)
      .map(p => `${((p[0] - t0) / Math.max(1, t1 - t0) * 714 + 3).toFixed(1)},` +
                `${(148 - p[1] / top * 140).toFixed(1)}`);
    const line = document.createElementNS(ns, 'polyline');
    line.setAttribute('class', 'series');
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', colors[i % colors.length]);
    line.setAttribute('stroke-width', '2');
    line.setAttribute('points', pts.join(' '));
    svg.appendChild(line);
    if (pts.length) {  // the newest point, visible even alone
      const [x, y] = pts[pts.length - 1].split(',');
      const dot = document.createElementNS(ns, 'circle');
      [['cx', x], ['cy', y], ['r', 3], ['fill', colors[i % colors.length]]].forEach(
        ([k, v]) => dot.setAttribute(k, v));
      svg.appendChild(dot);
    }
    const key = el('span', '', s.name);
    const swatch = el('i');
    swatch.style.background = colors[i % colors.length];
    key.prepend(swatch);
    legend.appendChild(key);
  });
  legend.appendChild(el('span', '', 'max ' + fmt(top / 1.1, 1)));
}
function charts(history) {
  const h = history || [];
  chart('chart-freshness', [
    {name: 'p50', points: h.map(p => [p.t, p.p50_ms])},
    {name: 'p99', points: h.map(p => [p.t, p.p99_ms])}]);
  const names = [...new Set(h.flatMap(p => Object.keys(p.stages || {})))];
  const per = (field) => names.map(n => ({name: n, points: h.map(p => [p.t,
    p.stages && p.stages[n] && p.stages[n][field] !== undefined ? p.stages[n][field] : null])}));
  chart('chart-rate', per('rate'));
  chart('chart-lag', per('lag_s'));
}
async function refresh() {
  try {
    const r = await fetch('/status.json', {cache: 'no-store'});
    const s = await r.json();
    render(s);
    charts(s.history);
    document.getElementById('error').textContent = r.ok ? '' : 'status ' + r.status;
  } catch (e) {
    document.getElementById('error').textContent = 'cannot reach the API: ' + e;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
)html";

// The page's Content-Security-Policy: its inline <script> and <style> by their SHA-256
// (so an injected script or style would not run), connections to its own origin only
// (/status.json), no frames, forms, plugins or base URL. Pure; computed once at start.
std::string StatusPageContentSecurityPolicy();

}  // namespace pdv::api
