// Sync across devices (docs/sync.md): two Chromium profiles are two devices,
// each with its own IndexedDB, Web Locks and BroadcastChannel, syncing the C++
// ledger (examples/ledger) through the ledger's sync server, started here on
// 127.0.0.1 (SQLite in a temporary directory; PostgreSQL from
// KEEPSTATE_TEST_POSTGRES, which `make test-e2e` sets with scripts/with-postgres)
// and killed at the end, also when a test fails. Chromium only (two Playwright
// persistent contexts; playwright.config.ts runs it in no other project).
//   (a) both online: a transfer on A reaches B's watch listener;
//   (b) A offline (server stopped), both make transfers, A reloads offline, the
//       server comes back: both converge and the audit holds everywhere;
//   (c) the server SIGKILLed in the middle of pushes: every mutation applied
//       exactly once (the ledger counts every transfer it processes);
//   (d) two server processes on one PostgreSQL, one device on each: exactly once;
//   (e) a wrong token sees nothing;
//   (f) a mutator that fails on the server is reported on the device that made it;
//   (g) two tabs of one device: one leads (talks to the server), what the other
//       commits is pushed by the leader, and the other leads once it closes.
import { test, expect, LEDGER_URL, Harness } from '../support/fixtures';

interface SyncServer {
  url: string;
  port: number;
  dir: string;
  stop(options?: { keep?: boolean }): Promise<void>;
}
type StartServer = (options?: { tokens?: string; dir?: string; port?: number; postgres?: string; args?: string[] }) => Promise<SyncServer>;

const servers: SyncServer[] = [];
let startServerImpl: StartServer;

test.beforeAll(async () => {
  ({ startServer: startServerImpl } = await import('../../js-bindings/test/support/sync-server.mjs' as string));
});
test.afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

async function startServer(origin: string, options: Parameters<StartServer>[0] = {}): Promise<SyncServer> {
  const server = await startServerImpl({ ...options, args: ['--allow-origin', origin] });
  servers.push(server);
  return server;
}

/** Operations processed by the ledger (applied and rejected transfers): each counted once. */
async function operations(ks: Harness, store: string): Promise<number> {
  const audit = await ks.call('cppAudit', store);
  expect(audit.ok, JSON.stringify(audit)).toBe(true);
  return audit.transfers + audit.rejected;
}

async function syncUntilIdle(ks: Harness, store: string): Promise<any> {
  let status: any;
  await expect
    .poll(async () => {
      status = await ks.call('syncNow', store);
      return status.error === null && status.pending === 0;
    }, { message: `${store} synced with nothing pending`, timeout: 20_000 })
    .toBe(true);
  return status;
}

test.describe('sync across devices', () => {
  /** Device A and device B: a harness tab each, the ledger client loaded. */
  async function devices(launch: (dir: string) => Promise<any>, harness: any, profile: string, profileB: string): Promise<[Harness, Harness]> {
    const a: Harness = await harness(await launch(profile), 'page');
    const b: Harness = await harness(await launch(profileB), 'page');
    await a.call('initLedger', LEDGER_URL);
    await b.call('initLedger', LEDGER_URL);
    return [a, b];
  }

  const open = (ks: Harness, url: string, space: string, extra: object = {}) =>
    ks.call('open', 'bank', { autosave: false, module: 'ledger', sync: { url, space, token: 'secret', pullIntervalMs: 60_000, ...extra } });

  test('(a) both online: a transfer on A reaches B\'s watch listener', async ({ launch, harness, profile, profileB, server: web }) => {
    const server = await startServer(web.origin);
    const [a, b] = await devices(launch, harness, profile, profileB);
    await open(a, server.url, 'a');
    await open(b, server.url, 'a');
    await a.call('cppCreate', 'bank', 50, 100, 7);
    await a.call('commit', 'bank');
    await syncUntilIdle(a, 'bank');
    await syncUntilIdle(b, 'bank');
    expect(await b.call('entries', 'bank')).toEqual(await a.call('entries', 'bank'));

    await b.call('watch', 'bank', {});
    await a.call('cppTransfers', 'bank', 1);
    await a.call('commit', 'bank'); // a commit starts a round: pushed, then B is poked and pulls
    await expect.poll(async () => (await b.call('watched', 'bank')).length, { message: 'B heard the transfer', timeout: 10_000 }).toBeGreaterThan(0);
    await expect.poll(async () => JSON.stringify(await b.call('entries', 'bank')), { timeout: 10_000 }).toBe(JSON.stringify(await a.call('entries', 'bank')));
    expect((await b.call('syncStatus', 'bank')).connected).toBe(true);
    expect(await operations(b, 'bank')).toBe(1);
  });

  test('(b) offline on A, both write, A reloads offline, the server returns: both converge, audit holds', async ({ launch, harness, profile, profileB, server: web }) => {
    let server = await startServer(web.origin);
    const [a, b] = await devices(launch, harness, profile, profileB);
    await open(a, server.url, 'b');
    await a.call('cppCreate', 'bank', 40, 100, 11);
    await a.call('commit', 'bank');
    await syncUntilIdle(a, 'bank');
    await open(b, server.url, 'b');
    await syncUntilIdle(b, 'bank');

    await server.stop({ keep: true }); // unreachable for both
    servers.splice(servers.indexOf(server), 1);
    for (let i = 0; i < 5; ++i) {
      await a.call('cppTransfers', 'bank', 20);
      await a.call('commit', 'bank');
      await b.call('cppTransfers', 'bank', 10);
      await b.call('commit', 'bank');
    }
    const statusA = await a.call('syncNow', 'bank');
    expect(statusA.error).not.toBeNull();
    expect(statusA.pending).toBe(5);
    // A reloads while offline: its pending work was committed with its state.
    await a.tab.reload();
    await Harness.ready(a);
    await a.call('initLedger', LEDGER_URL);
    await open(a, server.url, 'b');
    expect((await a.call('syncNow', 'bank')).pending).toBe(5);
    expect(await operations(a, 'bank')).toBe(100);

    server = await startServer(web.origin, { dir: server.dir, port: server.port });
    await syncUntilIdle(a, 'bank');
    await syncUntilIdle(b, 'bank');
    await syncUntilIdle(a, 'bank');
    expect(await a.call('entries', 'bank')).toEqual(await b.call('entries', 'bank'));
    expect(await operations(a, 'bank')).toBe(150);
    expect(await operations(b, 'bank')).toBe(150);
  });

  test('(c) the server SIGKILLed in the middle of pushes: nothing acknowledged lost, nothing applied twice', async ({ launch, harness, profile, profileB, server: web }) => {
    let server = await startServer(web.origin);
    const [a, b] = await devices(launch, harness, profile, profileB);
    await open(a, server.url, 'c');
    await a.call('cppCreate', 'bank', 40, 100, 13);
    await a.call('commit', 'bank');
    await syncUntilIdle(a, 'bank');
    let made = 0;
    for (let kill = 0; kill < 3; ++kill) {
      // Transfers committed one after another, each commit starting a push; the
      // server dies at a random moment among them.
      const writes = (async () => {
        for (let i = 0; i < 20; ++i) {
          await a.call('cppTransfers', 'bank', 5);
          await a.call('commit', 'bank');
          made += 5;
        }
      })();
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 400));
      await server.stop({ keep: true });
      servers.splice(servers.indexOf(server), 1);
      await writes;
      server = await startServer(web.origin, { dir: server.dir, port: server.port });
      await syncUntilIdle(a, 'bank');
      expect(await operations(a, 'bank')).toBe(made);
    }
    // A new device sees exactly what was made, once each.
    await open(b, server.url, 'c');
    await syncUntilIdle(b, 'bank');
    expect(await operations(b, 'bank')).toBe(made);
    expect(await b.call('entries', 'bank')).toEqual(await a.call('entries', 'bank'));
  });

  test('(d) two server processes on one PostgreSQL: every mutation applied exactly once', async ({ launch, harness, profile, profileB, server: web }) => {
    const postgres = process.env.KEEPSTATE_TEST_POSTGRES;
    expect(postgres, 'KEEPSTATE_TEST_POSTGRES: run under scripts/with-postgres (make test-e2e does)').toBeTruthy();
    const space = `d-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
    const one = await startServer(web.origin, { postgres });
    const two = await startServer(web.origin, { postgres });
    const [a, b] = await devices(launch, harness, profile, profileB);
    await open(a, one.url, space);
    await a.call('cppCreate', 'bank', 40, 100, 17);
    await a.call('commit', 'bank');
    await syncUntilIdle(a, 'bank');
    await open(b, two.url, space);
    await syncUntilIdle(b, 'bank');
    // Both write at once, each through its own server process.
    await Promise.all(
      [a, b].map(async (ks) => {
        for (let i = 0; i < 10; ++i) {
          await ks.call('cppTransfers', 'bank', 5);
          await ks.call('commit', 'bank');
        }
      }),
    );
    await syncUntilIdle(a, 'bank');
    await syncUntilIdle(b, 'bank');
    await syncUntilIdle(a, 'bank');
    expect(await operations(a, 'bank')).toBe(100);
    expect(await operations(b, 'bank')).toBe(100);
    expect(await a.call('entries', 'bank')).toEqual(await b.call('entries', 'bank'));
  });

  test('(e) a wrong token sees nothing of the space', async ({ launch, harness, profile, profileB, server: web }) => {
    const server = await startServer(web.origin);
    const [a, b] = await devices(launch, harness, profile, profileB);
    await open(a, server.url, 'e');
    await a.call('cppCreate', 'bank', 10, 100, 19);
    await a.call('commit', 'bank');
    await syncUntilIdle(a, 'bank');
    await b.call('open', 'bank', { autosave: false, module: 'ledger', sync: { url: server.url, space: 'e', token: 'wrong' } });
    const status = await b.call('syncNow', 'bank');
    expect(status.error?.message).toContain('401');
    expect(status.serverVersion).toBe(0);
    expect(await b.call('entries', 'bank')).toEqual([]);
  });

  test('(f) a mutator that fails on the server is reported on the device that made it', async ({ launch, harness, profile, profileB, server: web }) => {
    const server = await startServer(web.origin);
    const [a, b] = await devices(launch, harness, profile, profileB);
    await open(a, server.url, 'f');
    await a.call('cppCreate', 'bank', 2, 10, 23);
    await a.call('commit', 'bank');
    await syncUntilIdle(a, 'bank');
    await open(b, server.url, 'f', { websocket: false }); // B must not hear of A's spending first
    await syncUntilIdle(b, 'bank');
    // Both empty the same account: A's reaches the server first, B's fails there.
    await a.call('cppSpend', 'bank', 0, 1, 10);
    await a.call('commit', 'bank');
    await syncUntilIdle(a, 'bank');
    await b.call('cppSpend', 'bank', 0, 1, 10);
    await b.call('commit', 'bank');
    await syncUntilIdle(b, 'bank');
    const events = (await b.call('events', 'bank')).filter((e: any) => e.type === 'sync' && e.failed.length > 0);
    expect(events).toHaveLength(1);
    expect(events[0].failed[0]).toMatchObject({ name: 'transfer', code: 'invalid-argument' });
    expect(await b.call('entries', 'bank')).toEqual(await a.call('entries', 'bank'));
    expect((await b.call('cppAudit', 'bank')).transfers).toBe(1);
  });

  test('(g) two tabs of one device: one talks to the server, pushes what the other commits, and hands over when it closes', async ({ launch, harness, profile, profileB, server: web }) => {
    const server = await startServer(web.origin);
    const contextA = await launch(profile);
    const [a1, a2]: Harness[] = [await harness(contextA, 'page'), await harness(contextA, 'page')];
    const b: Harness = await harness(await launch(profileB), 'page');
    for (const ks of [a1, a2, b]) await ks.call('initLedger', LEDGER_URL);
    await open(a1, server.url, 'g');
    await a1.call('cppCreate', 'bank', 10, 100, 29);
    await a1.call('commit', 'bank');
    await syncUntilIdle(a1, 'bank');
    await open(a2, server.url, 'g');
    await open(b, server.url, 'g');
    await syncUntilIdle(b, 'bank');
    expect((await a1.call('syncStatus', 'bank')).leader).toBe(true);
    expect((await a2.call('syncStatus', 'bank')).leader).toBe(false);

    // The follower tab's transfer, committed there, reaches device B through the leader.
    await b.call('watch', 'bank', {});
    await a2.call('cppTransfers', 'bank', 3);
    await a2.call('commit', 'bank');
    await expect.poll(async () => (await b.call('watched', 'bank')).length, { message: 'B heard the follower tab\'s transfers', timeout: 10_000 }).toBeGreaterThan(0);
    await expect.poll(async () => operations(b, 'bank'), { timeout: 10_000 }).toBe(3);

    await a1.call('close', 'bank');
    await expect.poll(async () => (await a2.call('syncStatus', 'bank')).leader, { message: 'the other tab leads', timeout: 10_000 }).toBe(true);
    await a2.call('cppTransfers', 'bank', 2);
    await a2.call('commit', 'bank');
    await syncUntilIdle(a2, 'bank');
    await expect.poll(async () => operations(b, 'bank'), { timeout: 10_000 }).toBe(5);
  });
});
