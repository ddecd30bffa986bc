// A live chart for the demo page: transfers per second (one sample per
// transfer_batch call, the rate of that call) as a line, and commit latency
// (one dot per commit, with its milliseconds) on a second axis, over the
// seconds since the page opened. Plain SVG, redrawn at most ~10 times a
// second by the page's render(): recording a sample is an array push, so the
// chart costs the burst nothing measurable.
const SVG = 'http://www.w3.org/2000/svg';
const W = 720, H = 220, PAD = { left: 64, right: 56, top: 14, bottom: 28 };

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`. */
function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

const short = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : `${Math.round(n)}`);

export class LiveChart {
  /** @param {Element} host where the <svg> goes */
  constructor(host) {
    this.started = performance.now();
    /** [seconds since open, transfers/s] per transfer_batch call */
    this.rates = [];
    /** [seconds since open, ms] per commit */
    this.commits = [];
    this.svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'transfers per second and commit latency' });
    host.append(this.svg);
    this.draw();
  }

  /** A transfer_batch call of `n` transfers took `ms`. */
  rate(n, ms) {
    if (ms > 0) this.rates.push([(performance.now() - this.started) / 1000, n / (ms / 1000)]);
  }

  /** A commit completed in `ms`. */
  commit(ms) {
    this.commits.push([(performance.now() - this.started) / 1000, ms]);
  }

  draw() {
    const svg = this.svg;
    svg.replaceChildren();
    const t1 = Math.max(1, ...this.rates.map((r) => r[0]), ...this.commits.map((c) => c[0]));
    const t0 = Math.max(0, Math.min(t1 - 1, ...this.rates.map((r) => r[0] - 0.5), ...this.commits.map((c) => c[0] - 0.5)));
    const rMax = niceMax(Math.max(0, ...this.rates.map((r) => r[1])));
    const cMax = niceMax(Math.max(0, ...this.commits.map((c) => c[1])));
    const x = (t) => PAD.left + ((t - t0) / (t1 - t0 || 1)) * (W - PAD.left - PAD.right);
    const yR = (v) => H - PAD.bottom - (v / rMax) * (H - PAD.top - PAD.bottom);
    const yC = (v) => H - PAD.bottom - (v / cMax) * (H - PAD.top - PAD.bottom);

    svg.append(el('rect', { x: PAD.left, y: PAD.top, width: W - PAD.left - PAD.right, height: H - PAD.top - PAD.bottom, class: 'chart-area' }));
    for (const f of [0, 0.5, 1]) {
      const y = yR(rMax * f);
      svg.append(el('line', { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: 'chart-grid' }));
      svg.append(el('text', { x: PAD.left - 6, y: y + 4, 'text-anchor': 'end', class: 'chart-rate' }, short(rMax * f)));
      svg.append(el('text', { x: W - PAD.right + 6, y: y + 4, class: 'chart-commit' }, `${short(cMax * f)} ms`));
    }
    svg.append(el('text', { x: PAD.left, y: H - 8, class: 'chart-axis' }, `${t0.toFixed(1)} s`));
    svg.append(el('text', { x: W - PAD.right, y: H - 8, 'text-anchor': 'end', class: 'chart-axis' }, `${t1.toFixed(1)} s since the page opened`));
    svg.append(el('text', { x: PAD.left + 8, y: PAD.top + 14, class: 'chart-rate' }, 'transfers / s'));
    svg.append(el('text', { x: W - PAD.right - 8, y: PAD.top + 14, 'text-anchor': 'end', class: 'chart-commit' }, '● commit latency'));

    const visible = this.rates.filter((r) => r[0] >= t0);
    if (visible.length > 0) {
      svg.append(el('polyline', {
        points: visible.map(([t, v]) => `${x(t).toFixed(1)},${yR(v).toFixed(1)}`).join(' '),
        class: 'chart-rate-line',
        'data-samples': visible.length,
      }));
    }
    for (const [t, ms] of this.commits.filter((c) => c[0] >= t0)) {
      const dot = el('circle', { cx: x(t).toFixed(1), cy: yC(ms).toFixed(1), r: 4, class: 'chart-commit-dot' });
      dot.append(el('title', {}, `commit: ${ms.toFixed(0)} ms`));
      svg.append(dot);
    }
  }
}
