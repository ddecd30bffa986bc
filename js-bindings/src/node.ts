// keepstate's entry under Node: the `node` condition of package.json's
// exports (pages, workers and browser bundlers get index.js, which names no
// Node module). Two things differ in Node:
//  - the glue: keepstate.node.js is the same Emscripten glue as keepstate.js
//    with node_prelude.js in front (require() and __dirname for the glue's
//    Node branch), derived from it by the build (cmake/keepstate_wasm.cmake,
//    SPLIT_NODE_GLUE);
//  - the .wasm: Node's fetch cannot load a file: URL, so it is read with fs.
// Importing this module installs both (a side effect: package.json lists it
// under sideEffects), before any store can open; the API is index.js's.
import { setPlatform } from './wasm.js';

type Glue = typeof import('./keepstate.js');
// The typings of both glue files are keepstate.d.ts; `as string` keeps tsc
// from looking for a second copy of them (and the project has no Node types).
setPlatform({
  glue: () => import('./keepstate.node.js' as string) as Promise<Glue>,
  async readWasm(url) {
    const fs = (await import('node:fs/promises' as string)) as { readFile(path: URL): Promise<Uint8Array> };
    return fs.readFile(url);
  },
});

export * from './index.js';
