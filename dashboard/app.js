// The tbnode dashboard: reads /status.json (schema: node/status.schema.json) and
// /history.json from the node that serves it. Plain DOM, no libraries, no build step.
'use strict';

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function ms(ns) {
  return (ns / 1e6).toFixed(3) + ' ms';
}

function regionsOf(status) {
  const set = new Set([status.region]);
  for (const p of status.peers) if (p.region) set.add(p.region);
  for (const v of status.verdicts) for (const r of v.regions) set.add(r.region);
  return [...set].sort();
}

function renderMatrix(status) {
  const regions = regionsOf(status);
  const t = document.getElementById('matrix');
  t.replaceChildren(el('tr', {}, el('th', {}, 'source'), el('th', {}, 'verdict'),
    ...regions.map((r) => el('th', {}, r))));
  for (const v of status.verdicts) {
    const row = el('tr', {'data-source': v.name, 'data-kind': v.kind});
    row.append(el('th', {}, `${v.kind} ${v.name}`));
    row.append(el('td', {class: 'verdict v-' + v.verdict, 'data-verdict': v.verdict,
      title: `${v.reason}\nsince ${v.since}`}, v.verdict_text));
    for (const region of regions) {
      const r = v.regions.find((x) => x.region === region);
      const cls = 'cell v-' + v.verdict + (r && r.agrees === false ? ' miss' : '');
      const hover = `${v.verdict_text} since ${v.since}: ${v.reason}` +
        (r ? `\n${region} (${r.origin}): ${ms(r.offset_ns)} ± ${ms(r.error_ns)}, ` +
          `${(r.age_ms / 1000).toFixed(1)} s old` : `\n${region}: no fresh measurement`);
      row.append(el('td', {class: cls, 'data-region': region, 'data-verdict': v.verdict,
        title: hover}, r ? ms(r.offset_ns) : '–'));
    }
    t.append(row);
  }
}

// Rows: the node that measured; columns: the node measured. This node's row is its live
// PING/PONG estimate, the others' their newest signed PEER measurement (status.peer_matrix).
function renderPeers(status) {
  const cells = new Map();
  for (const m of status.peer_matrix) cells.set(`${m.from}>${m.to}`, m);
  for (const p of status.peers) {
    if (p.rtt_ns !== undefined) {
      cells.set(`${status.node}>${p.name}`, {rtt_ns: p.rtt_ns, offset_ns: p.offset_ns, age_ms: 0});
    }
  }
  const nodes = [...new Set([status.node, ...status.peers.map((p) => p.name),
    ...status.peer_matrix.flatMap((m) => [m.from, m.to])])].sort();
  const t = document.getElementById('peers');
  t.replaceChildren(el('tr', {}, el('th', {}, 'from \\ to'), ...nodes.map((n) => el('th', {}, n))));
  for (const from of nodes) {
    const row = el('tr', {}, el('th', {}, from));
    for (const to of nodes) {
      const m = cells.get(`${from}>${to}`);
      row.append(el('td', {class: 'cell', 'data-from': from, 'data-to': to,
        title: m ? `${(m.age_ms / 1000).toFixed(0)} s old` : ''},
      m ? `${ms(m.rtt_ns)} / ${ms(m.offset_ns)}` : (from === to ? '·' : '–')));
    }
    t.append(row);
  }
}

function renderEvidence(status) {
  const d = document.getElementById('evidence');
  d.replaceChildren();
  for (const v of status.verdicts) {
    d.append(el('h3', {}, `${v.kind} ${v.name}: `, el('span', {class: 'v-' + v.verdict}, v.verdict_text),
      ` since ${v.since}`));
    d.append(el('p', {}, v.reason));
    const ul = el('ul', {class: 'ev', 'data-source': v.name});
    for (const e of v.evidence) ul.append(el('li', {}, `${e.origin}:${e.seq}`));
    if (!v.evidence.length) ul.append(el('li', {}, '(none)'));
    d.append(ul);
    // how an auditor gets these measurements, signed, to verify offline (tbnode evidence verify)
    if (v.evidence_export) d.append(el('p', {class: 'export'}, 'export: ', el('code', {}, v.evidence_export)));
  }
}

function chart(title, points, regions) {
  const W = 420, H = 160, P = 30;
  const svgNS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNS, 'svg');
  svg.setAttribute('width', W);
  svg.setAttribute('height', H);
  if (points.length) {
    const t0 = Math.min(...points.map((p) => p.t_ns)), t1 = Math.max(...points.map((p) => p.t_ns));
    let lo = Math.min(...points.map((p) => p.offset_ns)), hi = Math.max(...points.map((p) => p.offset_ns));
    if (hi - lo < 1e6) { lo -= 5e5; hi += 5e5; }
    const x = (t) => P + (W - 2 * P) * (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5);
    const y = (o) => H - P - (H - 2 * P) * (o - lo) / (hi - lo);
    regions.forEach((region, i) => {
      const pts = points.filter((p) => p.region === region);
      if (!pts.length) return;
      const line = document.createElementNS(svgNS, 'polyline');
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', COLOURS[i % COLOURS.length]);
      line.setAttribute('points', pts.map((p) => `${x(p.t_ns).toFixed(1)},${y(p.offset_ns).toFixed(1)}`).join(' '));
      svg.append(line);
      // a lone measurement (a slow source) is a dot, not an invisible line
      if (pts.length < 3) {
        for (const p of pts) {
          const dot = document.createElementNS(svgNS, 'circle');
          dot.setAttribute('cx', x(p.t_ns).toFixed(1));
          dot.setAttribute('cy', y(p.offset_ns).toFixed(1));
          dot.setAttribute('r', '2.5');
          dot.setAttribute('fill', COLOURS[i % COLOURS.length]);
          svg.append(dot);
        }
      }
    });
    for (const [v, label] of [[hi, ms(hi)], [lo, ms(lo)]]) {
      const tx = document.createElementNS(svgNS, 'text');
      tx.setAttribute('x', 2);
      tx.setAttribute('y', y(v) + (v === hi ? 10 : -2));
      tx.setAttribute('font-size', '10');
      tx.textContent = label;
      svg.append(tx);
    }
  }
  const legend = el('div', {class: 'legend'},
    ...regions.map((r, i) => el('span', {style: `color:${COLOURS[i % COLOURS.length]}`}, '— ' + r)));
  return el('div', {class: 'chart', 'data-source': title, 'data-points': String(points.length)},
    el('div', {}, title), svg, legend);
}

async function renderCharts(status) {
  const regions = regionsOf(status);
  const box = document.getElementById('charts');
  const charts = [];
  for (const v of status.verdicts) {
    const q = new URLSearchParams({kind: v.kind, source: v.name, seconds: '900', points: '2000'});
    try {
      const h = await (await fetch('history.json?' + q)).json();
      charts.push(chart(`${v.kind} ${v.name}`, h.points, regions));
    } catch (e) {
      charts.push(el('div', {class: 'chart'}, `${v.name}: history unavailable (${e})`));
    }
  }
  box.replaceChildren(...charts);
}

async function refresh() {
  try {
    const status = await (await fetch('status.json')).json();
    document.getElementById('node').textContent =
      `${status.node} · region ${status.region} · ${status.version} · up ${status.uptime_s} s`;
    const c = status.consensus;
    document.getElementById('summary').textContent = c
      ? `consensus ${ms(c.offset_ns)} ± ${ms(c.uncertainty_ns)} (${c.agree} of ${c.votes} agree)`
      : 'consensus: none yet';
    renderMatrix(status);
    renderPeers(status);
    renderEvidence(status);
    await renderCharts(status);
    document.body.setAttribute('data-loaded', new Date().toISOString());
  } catch (e) {
    document.getElementById('summary').textContent = 'cannot read status.json: ' + e;
  }
}

refresh();
setInterval(refresh, 5000);
