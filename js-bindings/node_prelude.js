// keepstate: prepended (--extern-pre-js) to the Emscripten ES module glue.
// Under Node the glue of an -sEXPORT_ES6 build calls require() and reads
// __dirname, which an ES module does not have (TOOLCHAIN.md); define them
// from import.meta.url there. In a page or a worker nothing is imported.
const keepstateIsNode = typeof process === 'object' && typeof process.versions === 'object' &&
    typeof process.versions.node === 'string';
var require = keepstateIsNode ?
    (await import('node:module')).createRequire(import.meta.url) : undefined;
var __dirname = keepstateIsNode ?
    (await import('node:path')).dirname((await import('node:url')).fileURLToPath(import.meta.url)) :
    undefined;
