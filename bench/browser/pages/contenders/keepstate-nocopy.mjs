// keepstate with `copy: false`: IndexedDB only, no OPFS copy (keepstate.mjs
// reads the query string of its own URL).
export * from './keepstate.mjs?nocopy';
