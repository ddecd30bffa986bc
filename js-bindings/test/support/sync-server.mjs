// Starts the ledger example's sync server (built natively: build/native-debug) on 127.0.0.1,
// on a port it picks (or `port`), over SQLite in a temporary directory (or PostgreSQL:
// `postgres`, a conninfo); `args`: more flags (e.g. --allow-origin). stop() kills it (tests
// call it in t.after or finally, so it stops also when a test fails).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SERVER_BINARY = fileURLToPath(new URL('../../../build/native-debug/examples/ledger/keepstate-ledger-server', import.meta.url));

/**
 * tokens: lines "<space or *> <token>". dir: reuse a data directory (a restart). binary: another
 * build of the server (the demo runs native-release's).
 */
export async function startServer({ tokens = '* secret\n', dir, port = 0, postgres, args = [], binary = SERVER_BINARY } = {}) {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: build its native preset (make test-js builds native-debug)`);
  const root = dir ?? mkdtempSync(join(tmpdir(), 'keepstate-sync-'));
  writeFileSync(join(root, 'tokens'), tokens);
  const storage = postgres === undefined ? ['--data', join(root, 'data')] : ['--postgres', postgres];
  const child = spawn(binary, ['--port', String(port), ...storage, '--tokens', join(root, 'tokens'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(`http://${m[1]}`);
    });
    child.on('exit', (code) => reject(new Error(`the sync server exited (${code}) before listening: ${stderr}`)));
  });
  let stopped = false;
  return {
    url,
    port: Number(url.split(':').pop()),
    dir: root,
    /** Kills the server (SIGKILL: nothing it did not commit may be acknowledged). keep: keep the data directory. */
    async stop({ keep = false } = {}) {
      if (!stopped) {
        stopped = true;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      if (!keep && dir === undefined) rmSync(root, { recursive: true, force: true });
    },
  };
}
