// Figure 4: a device offline for 10,000 mutations catches up. The device (a synced ledger
// store, fake IndexedDB, no poke socket) syncs the space's accounts, goes offline (its fetch
// fails as an unreachable server's does) and makes 10,000 transfers, committing every 500;
// meanwhile another client pushes 10,000 transfers of its own. Back online, one syncNow()
// pushes the device's 10,000 (batches of 1,000) and pulls what changed, replaying nothing
// (all were applied): timed, with the bytes sent and received. The other client's raw pushes
// of its 10,000 (the same batches, no store behind them) are the floor it is set against.
import { assertSynced, encodeTransfer, openDevice } from './devices.mjs';
import { clientId, countingFetch, mutation, SpaceWire } from './wire.mjs';

const ACCOUNTS = 1000;

export async function measureCatchUp(url, { mutations = 10_000 } = {}) {
  const space = `catchup-${process.pid}`;
  const fetch = countingFetch();
  const device = await openDevice(url, space, { websocket: false, fetch });
  try {
    await device.ledger.openAccounts(0, ACCOUNTS, 1e9);
    await device.store.commit();
    await device.store.syncNow();
    assertSynced(device, 'figure 4');

    fetch.offline = true;
    for (let i = 0; i < mutations; ++i) {
      await device.ledger.transfer(i % ACCOUNTS, (i * 7 + 1) % ACCOUNTS, 1);
      if ((i + 1) % 500 === 0) await device.store.commit();
    }
    await device.store.commit();
    const wire = new SpaceWire(url, space);
    const other = clientId('other');
    const tRaw = performance.now();
    for (let first = 0; first < mutations; first += 1000) {
      const batch = [];
      for (let i = first; i < Math.min(mutations, first + 1000); ++i) {
        batch.push(mutation(i + 1, 'transfer', encodeTransfer((i * 3) % ACCOUNTS, (i * 3 + 2) % ACCOUNTS, 1)));
      }
      await wire.push(other, batch);
    }
    const rawMs = performance.now() - tRaw;

    fetch.offline = false;
    fetch.reset();
    const t0 = performance.now();
    await device.store.syncNow();
    const ms = performance.now() - t0;
    assertSynced(device, 'figure 4');
    const pushed = device.store.sync.lastMutationId - 1; // after its open_account
    if (pushed !== mutations) throw new Error(`figure 4: the server processed ${pushed} of the device's mutations, not ${mutations}`);
    const transfers = device.ledger.totals().transfers;
    if (transfers !== 2 * mutations) throw new Error(`figure 4: the device sees ${transfers} transfers, not ${2 * mutations}`);
    return { mutations, ms, sent: fetch.sent, received: fetch.received, rawMs };
  } finally {
    await device.store.close();
  }
}
