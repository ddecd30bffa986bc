// The Worker that holds a store's journal file (journal-client.ts starts it
// from a Blob URL of this file bundled into one classic script:
// tools/bundle-journal-worker.mjs): FileSystemSyncAccessHandle exists only
// in dedicated Workers.
// Its first message names the store's copy folder; every later one is a
// JournalRequest, served one at a time in order. The handler is set before
// anything is awaited (a message arriving during evaluation would find none),
// and nothing is awaited at the top level (Vite builds workers as iife).
import { JOURNAL_FILE, LocalJournalHost, type JournalRequest } from './journal.js';
import { KeepstateError } from '../errors.js';

interface Root {
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<Root>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<{ createSyncAccessHandle?(): Promise<import('./journal.js').SyncFile> }>;
}

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<{ id: number; folder?: string; request?: JournalRequest }>) => void) | null;
  postMessage(message: unknown): void;
  navigator: { storage: { getDirectory(): Promise<Root> } };
};

let host: LocalJournalHost | null = null;

scope.onmessage = ({ data }) => {
  if (data.folder !== undefined) {
    const folder = data.folder;
    host = new LocalJournalHost(async () => {
      const root = await scope.navigator.storage.getDirectory();
      const dir = await (await root.getDirectoryHandle('keepstate', { create: true })).getDirectoryHandle(folder, { create: true });
      const file = await dir.getFileHandle(JOURNAL_FILE, { create: true });
      if (typeof file.createSyncAccessHandle !== 'function') throw new KeepstateError('unsupported', 'this browser has no FileSystemSyncAccessHandle');
      return file.createSyncAccessHandle();
    });
    return;
  }
  host!.call(data.request!).then(
    (result) => scope.postMessage({ id: data.id, result }),
    (e: unknown) => {
      const error = e as { name?: string; message?: string; code?: string };
      scope.postMessage({ id: data.id, error: { name: error.name ?? 'Error', message: error.message ?? String(e), code: e instanceof KeepstateError ? e.code : undefined } });
    },
  );
};
