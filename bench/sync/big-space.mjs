// Figures 3 and 5 on one space of 64 MiB (1 KiB random values, written by raw pushes of
// keepstate.put):
//   5. a new device's first pull: openStore + syncNow() of a fresh device (fake IndexedDB:
//      the snapshot downloaded, verified page by page, adopted, committed), against a plain
//      HTTP download of the same snapshot from the same server (fetch into an ArrayBuffer);
//      the same device on memory storage says how much of it is the local database;
//   3. a pull after a 1 KiB change (another client's put): the device's syncNow() and the
//      bytes it sent and received, against the snapshot download (time and bytes); a raw
//      pull of the same change says how much of the time is the client's adoption.
// The contenders take turns, run by run.
import { randomFillSync } from 'node:crypto';
import { assertSynced, openDevice } from './devices.mjs';
import { median } from './stats.mjs';
import { clientId, countingFetch, mutation, putArgs, SpaceWire } from './wire.mjs';

const VALUE = 1024;
const PER_PUSH = 4096; // about 5.5 MB of JSON: under the server's 16 MiB body bound

export const recordKey = (i) => `r/${String(i).padStart(8, '0')}`;

/** Writes `mib` MiB of 1 KiB random records to `space`: { records, version, seconds }. */
async function fill(wire, mib) {
  const client = clientId('filler');
  const records = mib * 1024;
  const value = Buffer.alloc(VALUE);
  let id = 0;
  let answer;
  const t0 = performance.now();
  for (let first = 0; first < records; first += PER_PUSH) {
    const mutations = [];
    for (let i = first; i < Math.min(records, first + PER_PUSH); ++i) {
      randomFillSync(value);
      mutations.push(mutation(++id, 'keepstate.put', putArgs(recordKey(i), value)));
    }
    answer = await wire.push(client, mutations);
  }
  return { records, version: answer.version, seconds: (performance.now() - t0) / 1000 };
}

/**
 * A new device, open + first sync: { ms, openMs, device, fetch }. Its fetch is Node's own
 * unless `counted` (wire.mjs's countingFetch copies each answer once more: not for the timing).
 */
async function newDevice(url, space, version, { storage, counted = false } = {}) {
  const fetch = counted ? countingFetch() : undefined;
  const t0 = performance.now();
  const device = await openDevice(url, space, { websocket: false, fetch, storage });
  const t1 = performance.now();
  await device.store.syncNow();
  const ms = performance.now() - t0;
  assertSynced(device, 'figure 5');
  if (device.store.sync.serverVersion !== version) throw new Error(`figure 5: the device is at ${device.store.sync.serverVersion}, not ${version}`);
  return { ms, openMs: t1 - t0, device, fetch };
}

/** Figure 5, in turns: plain download, device on fake IndexedDB, device on memory storage. */
async function firstPull(url, space, wire, version, runs) {
  const plain = [];
  const device = [];
  const deviceOpen = [];
  const memory = [];
  let snapshotBytes = 0;
  for (let r = 0; r < runs; ++r) {
    const t0 = performance.now();
    const snap = await wire.snapshot();
    plain.push(performance.now() - t0);
    snapshotBytes = snap.bytes.byteLength;
    if (snap.version !== version) throw new Error('figure 5: the snapshot is not at the last version');

    const d = await newDevice(url, space, version);
    await d.device.store.close();
    device.push(d.ms);
    deviceOpen.push(d.openMs);

    const m = await newDevice(url, space, version, { storage: 'memory' });
    await m.device.store.close();
    memory.push(m.ms);
  }
  return { snapshotBytes, plainMs: median(plain), deviceMs: median(device), deviceOpenMs: median(deviceOpen), memoryMs: median(memory), runs };
}

/** Figure 3: another client changes one 1 KiB record, `changes` times; a device that has the space pulls each. */
async function changePull(url, space, wire, version, changes) {
  const kept = await newDevice(url, space, version, { counted: true });
  try {
    const writer = clientId('changer');
    const value = Buffer.alloc(VALUE);
    const pulls = [];
    const rawPulls = [];
    let sent = 0;
    let received = 0;
    let rawBytes = 0;
    for (let i = 0; i < changes; ++i) {
      randomFillSync(value);
      const key = recordKey(i * 997);
      const before = version;
      ({ version } = await wire.push(writer, [mutation(i + 1, 'keepstate.put', putArgs(key, value))]));

      const t0 = performance.now();
      const { answer, bytes } = await wire.pull(clientId('raw-reader'), before);
      rawPulls.push(performance.now() - t0);
      rawBytes = bytes;
      if (answer.entries.length !== 1) throw new Error(`figure 3: the raw pull has ${answer.entries.length} entries, not 1`);

      kept.fetch.reset();
      const t1 = performance.now();
      await kept.device.store.syncNow();
      pulls.push(performance.now() - t1);
      sent = kept.fetch.sent;
      received = kept.fetch.received;
      assertSynced(kept.device, 'figure 3');
      if (!Buffer.from(kept.device.store.get(key)).equals(value)) throw new Error('figure 3: the device does not have the change');
    }
    return { ms: median(pulls), sent, received, rawMs: median(rawPulls), rawBytes, changes };
  } finally {
    await kept.device.store.close();
  }
}

export async function measureBigSpace(url, { mib = 64, runs = 3, changes = 5 } = {}) {
  const space = `big-${process.pid}`;
  const wire = new SpaceWire(url, space);
  const filled = await fill(wire, mib);
  const first = await firstPull(url, space, wire, filled.version, runs);
  const { snapshotBytes, ...timings } = first;
  return {
    mib,
    records: filled.records,
    fillSeconds: filled.seconds,
    snapshotBytes,
    firstPull: timings,
    changePull: await changePull(url, space, wire, filled.version, changes),
  };
}
