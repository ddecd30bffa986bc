// SQLite WASM on its opfs-sahpool VFS, in a Worker (sqlite-wasm.mjs).
export * from './sqlite-wasm.mjs?vfs=opfs-sahpool';
