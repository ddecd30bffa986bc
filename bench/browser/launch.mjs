// What the bench/browser drivers (run.mjs, tabs.mjs, files.mjs) share: how
// Chromium is launched, command-line options, medians.

/** Debian's Chromium, headless, as every figure of bench/browser is taken ($CHROMIUM overrides). */
export const LAUNCH = {
  headless: true,
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
};

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The value after `name` on the command line, or undefined. */
export function option(name, argv = process.argv.slice(2)) {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}
