// Order statistics and number formats for bench/sync's tables.

/** The p-th percentile (0..100) of `values`, nearest rank. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const median = (values) => percentile(values, 50);

export const ms = (x) => `${x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US')} ms`;
export const count = (x) => Math.round(x).toLocaleString('en-US');
export const rate = (x) => `${count(x)}/s`;
export function bytes(x) {
  if (x < 10 * 1024) return `${count(x)} B`;
  if (x < 10 * 1024 * 1024) return `${(x / 1024).toFixed(1)} KiB`;
  return `${(x / 1024 / 1024).toFixed(1)} MiB`;
}
export const ratio = (x) => `${x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : count(x)}x`;
