// SQLite WASM on its opfs VFS, in a Worker (sqlite-wasm.mjs); its page is served cross-origin isolated.
export * from './sqlite-wasm.mjs?vfs=opfs';
