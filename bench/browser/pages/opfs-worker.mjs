// The Worker of opfs.mjs: OPFS writes through FileSystemSyncAccessHandle,
// which only dedicated Workers have. Each message is one timed operation.
// The handler is set before anything is awaited: a message that arrives
// while the module is still evaluating would otherwise find none.
const dir = navigator.storage.getDirectory().then((root) => root.getDirectoryHandle('opfs-limits', { create: true }));
let log = null; // an append-only file whose handle stays open

onmessage = async ({ data: { id, op, name, bytes } }) => {
  try {
    const folder = await dir;
    if (op === 'file') {
      // A new file: create, open a handle, write, flush, close.
      const h = await (await folder.getFileHandle(name, { create: true })).createSyncAccessHandle();
      h.write(bytes, { at: 0 });
      h.flush();
      h.close();
    } else if (op === 'append') {
      log ??= await (await folder.getFileHandle('log', { create: true })).createSyncAccessHandle();
      log.write(bytes, { at: log.getSize() });
      log.flush();
    } else if (op === 'probe') {
      if (!('createSyncAccessHandle' in FileSystemFileHandle.prototype)) throw new Error('no FileSystemSyncAccessHandle in this browser');
    } else if (op === 'close') {
      log?.close();
      log = null;
    }
    postMessage({ id });
  } catch (e) {
    postMessage({ id, error: `${e.name}: ${e.message}` });
  }
};
