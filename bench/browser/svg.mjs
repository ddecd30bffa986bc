// A horizontal grouped bar chart as a standalone SVG (no chart library):
// one group per scenario, one bar per contender with its value printed next
// to it; linear or log10 value axis. Missing values (errors) are drawn as
// "n/a".
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function fmt(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)} M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(0)} k`;
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** groups: [{ label, bars: [{ name, value, color }] }]; returns the SVG text. */
export function barChart({ title, unit, groups, log = false }) {
  const barH = 14, gap = 4, groupGap = 14, left = 170, right = 90, top = 54, plotW = 560;
  const names = [...new Map(groups.flatMap((g) => g.bars).map((b) => [b.name, b.color])).entries()];
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => Number.isFinite(v) && v > 0);
  const max = Math.max(...values, 1e-9);
  const min = Math.min(...values, max);
  const lo = log ? Math.floor(Math.log10(min)) : 0;
  const hi = log ? Math.ceil(Math.log10(max) + 1e-9) : max * 1.05;
  const x = (v) => (log ? ((Math.log10(v) - lo) / Math.max(hi - lo, 1)) * plotW : (v / hi) * plotW);
  let y = top;
  const parts = [];
  for (const g of groups) {
    const h = g.bars.length * (barH + gap);
    if (g.label) parts.push(`<text x="${left - 8}" y="${y + h / 2 + 4}" text-anchor="end" font-weight="bold">${esc(g.label)}</text>`);
    for (const b of g.bars) {
      if (Number.isFinite(b.value) && b.value > 0) {
        const w = Math.max(1, x(b.value));
        parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${b.color}"><title>${esc(b.name)}: ${fmt(b.value)} ${esc(unit)}</title></rect>`);
        parts.push(`<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 3}">${fmt(b.value)}</text>`);
      } else {
        parts.push(`<text x="${left + 4}" y="${y + barH - 3}" fill="#999">${esc(b.name)}: n/a</text>`);
      }
      y += barH + gap;
    }
    y += groupGap;
  }
  const axis = [];
  const ticks = log ? Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i)) : Array.from({ length: 6 }, (_, i) => (hi / 5) * i);
  for (const t of ticks) {
    const tx = left + (log ? x(t) : (t / hi) * plotW);
    axis.push(`<line x1="${tx.toFixed(1)}" y1="${top - 6}" x2="${tx.toFixed(1)}" y2="${y - groupGap}" stroke="#ddd"/>`);
    const label = t === 0 ? '0' : log && t < 1000 ? String(+t.toPrecision(3)) : fmt(t);
    axis.push(`<text x="${tx.toFixed(1)}" y="${top - 10}" text-anchor="middle" fill="#666">${label}</text>`);
  }
  const legendY = y + 6;
  const legend = names.map(([name, color], i) =>
    `<rect x="${left}" y="${legendY + i * 18}" width="12" height="12" fill="${color}"/><text x="${left + 18}" y="${legendY + i * 18 + 10}">${esc(name)}</text>`);
  const height = legendY + names.length * 18 + 10;
  const width = left + plotW + right;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>
${axis.join('\n')}
${parts.join('\n')}
${legend.join('\n')}
</svg>
`;
}
