// keepstate: prepended to the Emscripten ES module glue that runs in Node
// (cmake/keepstate_wasm.cmake: the npm package's keepstate.node.js, and the
// one glue file of a module built without SPLIT_NODE_GLUE). Under Node the
// glue of an -sEXPORT_ES6 build calls require() and reads __dirname, which an
// ES module does not have (TOOLCHAIN.md); define them from import.meta.url
// there. In a page or a worker nothing is imported, but a browser bundler
// still fails to resolve these 'node:' imports: browser builds use
// web_prelude.js instead.
const keepstateIsNode = typeof process === 'object' && typeof process.versions === 'object' &&
    typeof process.versions.node === 'string';
var require = keepstateIsNode ?
    (await import('node:module')).createRequire(import.meta.url) : undefined;
var __dirname = keepstateIsNode ?
    (await import('node:path')).dirname((await import('node:url')).fileURLToPath(import.meta.url)) :
    undefined;
