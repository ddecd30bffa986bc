// Figure 1: a transfer made on device A reaches device B's watch listener. A and B are synced
// ledger stores with their own fake IndexedDB and poke sockets; a transfer is timed from A's
// transfer() call (then A's commit, which starts A's round: push, pull) to the listener B
// registered with watch() seeing it (B was poked, pulled and adopted). One at a time.
//
// The floor in the same run: the same path with no store on either side — a raw push of one
// transfer and its poke reaching a raw socket (with the commit's patch: B, at the version before
// with nothing pending, adopts that without a pull; docs/sync.md, "poke") — and a plain HTTP
// round trip (an empty push: parsed, authorized, answered, nothing committed). The raw pull
// after each, untimed, checks the transfer is there.
import { assertSynced, encodeOpenAccount, encodeTransfer, LEDGER_KEY, openDevice } from './devices.mjs';
import { percentile } from './stats.mjs';
import { clientId, mutation, nextPoke, SpaceWire } from './wire.mjs';

const ACCOUNTS = 100;

async function deviceToDevice(url, space, transfers) {
  const a = await openDevice(url, space);
  const b = await openDevice(url, space);
  try {
    await a.ledger.openAccounts(0, ACCOUNTS, 1e9);
    await a.store.commit();
    await a.store.syncNow();
    await b.store.syncNow();
    assertSynced(a, 'figure 1, A');
    let expected = b.ledger.totals().transfers;
    let heard = null;
    b.store.watch({ key: LEDGER_KEY }, () => {
      if (heard !== null && b.ledger.totals().transfers >= expected) heard();
    });
    const times = [];
    for (let i = 0; i < transfers; ++i) {
      ++expected;
      const arrived = new Promise((resolve) => (heard = resolve));
      const t0 = performance.now();
      await a.ledger.transfer(i % ACCOUNTS, (i + 1) % ACCOUNTS, 1);
      await a.store.commit();
      await arrived;
      times.push(performance.now() - t0);
      heard = null;
    }
    await a.store.syncNow();
    assertSynced(a, 'figure 1, A');
    if (b.ledger.totals().transfers !== expected) throw new Error('figure 1: B did not see every transfer');
    return times;
  } finally {
    await Promise.all([a.store.close(), b.store.close()]);
  }
}

async function rawFloor(url, space, transfers) {
  const wire = new SpaceWire(url, space);
  const client = clientId('floor');
  await wire.push(client, [mutation(1, 'open_account', encodeOpenAccount(1000, ACCOUNTS, 1e9))]);
  const { socket } = await wire.poke();
  const reader = clientId('floor-reader');
  try {
    const path = [];
    const http = [];
    let { answer } = await wire.pull(reader, 0);
    let version = answer.version;
    for (let i = 0; i < transfers; ++i) {
      const t0 = performance.now();
      const poked = nextPoke(socket, version + 1);
      await wire.push(client, [mutation(i + 2, 'transfer', encodeTransfer(1000 + (i % ACCOUNTS), 1000 + ((i + 1) % ACCOUNTS), 1))]);
      const poke = await poked;
      path.push(performance.now() - t0);
      if (!(poke.entries?.length > 0)) throw new Error("figure 1: the poke lacked the commit's patch");
      ({ answer } = await wire.pull(reader, version));
      if (answer.entries.length === 0) throw new Error('figure 1: the raw pull missed the transfer');
      version = answer.version;
      const t1 = performance.now();
      await wire.push(client, []);
      http.push(performance.now() - t1);
    }
    return { path, http };
  } finally {
    socket.terminate();
  }
}

/** { transfers, p50, p99, floorP50, floorP99, httpP50 } in ms. */
export async function measureLatency(url, { transfers = 200, warmup = 20 } = {}) {
  await deviceToDevice(url, `latency-warmup-${process.pid}`, warmup);
  const times = await deviceToDevice(url, `latency-${process.pid}`, transfers);
  const { path, http } = await rawFloor(url, `latency-floor-${process.pid}`, transfers);
  return {
    transfers,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    max: Math.max(...times),
    floorP50: percentile(path, 50),
    floorP99: percentile(path, 99),
    httpP50: percentile(http, 50),
    httpP99: percentile(http, 99),
  };
}
