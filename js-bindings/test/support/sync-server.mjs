// Starts the ledger example's sync server on 127.0.0.1, on a port it picks (or `port`), over
// SQLite in a temporary directory (or PostgreSQL: `postgres`, a conninfo); `args`: more flags
// (e.g. --allow-origin); `binary`: another build's server (the demo and bench/sync run
// native-release's).
// stop() kills it: tests call it in t.after or finally and bench/sync in a finally, so it
// stops also when they fail; a process that exits without calling it (an uncaught error,
// process.exit, a signal the caller turns into one) kills it on exit and removes its
// temporary directory.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The server of a native build preset (tests use native-debug). */
export function serverBinary(preset = 'native-debug') {
  return fileURLToPath(new URL(`../../../build/${preset}/examples/ledger/keepstate-ledger-server`, import.meta.url));
}
export const SERVER_BINARY = serverBinary();

/**
 * tokens: lines "<space or *> <token>". dir: reuse a data directory (a restart).
 * Resolves with { url, port, dir, pid, stop }.
 */
export async function startServer({ tokens = '* secret\n', dir, port = 0, postgres, args = [], binary = SERVER_BINARY } = {}) {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: build its preset (make test-js builds native-debug)`);
  const root = dir ?? mkdtempSync(join(tmpdir(), 'keepstate-sync-'));
  writeFileSync(join(root, 'tokens'), tokens);
  const storage = postgres === undefined ? ['--data', join(root, 'data')] : ['--postgres', postgres];
  const child = spawn(binary, ['--port', String(port), ...storage, '--tokens', join(root, 'tokens'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => {
    child.kill('SIGKILL');
    if (dir === undefined) rmSync(root, { recursive: true, force: true });
  };
  process.on('exit', killOnExit);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let url;
  try {
    url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(`http://${m[1]}`);
      });
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`the sync server exited (${code}) before listening: ${stderr}`)));
    });
  } catch (e) {
    process.off('exit', killOnExit);
    if (dir === undefined) rmSync(root, { recursive: true, force: true });
    throw e;
  }
  let stopped = false;
  return {
    url,
    port: Number(url.split(':').pop()),
    dir: root,
    pid: child.pid,
    /** Kills the server (SIGKILL: nothing it did not commit may be acknowledged). keep: keep the data directory. */
    async stop({ keep = false } = {}) {
      if (!stopped) {
        stopped = true;
        process.off('exit', killOnExit);
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await exited;
        }
      }
      if (!keep && dir === undefined) rmSync(root, { recursive: true, force: true });
    },
  };
}
