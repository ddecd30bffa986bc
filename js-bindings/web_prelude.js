// keepstate: prepended (--extern-pre-js) to the Emscripten ES module glue of
// a page, a worker or a browser bundle (SPLIT_NODE_GLUE in
// cmake/keepstate_wasm.cmake; Node gets node_prelude.js instead). The glue's
// Node branch, which never runs there, calls require('fs') and
// require('path'); declared here, `require` is a variable of this module, so
// a bundler (esbuild, webpack) does not try to resolve those Node modules.
var require = undefined;
var __dirname = undefined;
