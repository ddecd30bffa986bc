// Figure 2: one space's push throughput. 10 clients push ledger transfers as raw HTTP pushes
// (the args the package sends for Ledger.transfer), each on its own keep-alive connection,
// waiting for its answer before the next push: the server commits a push (its state and the
// client's last mutation id) before it answers, so every mutation counted was durable when
// acknowledged. Requests are built before the clock starts and sent as prepared bytes
// (wire.mjs, PushConnection): the loop times the server, not this process's JSON encoder or
// HTTP client.
//
// The limits in the same run: the disk's synchronous write rate (4 KiB + fdatasync in the
// server's temporary directory; the server's commits/s against it) and the HTTP no-op rate (10
// clients sending empty pushes: parsed, authorized, answered, nothing committed; the pushes/s
// of the one-mutation run against it). The server's and this process's CPU time per run say
// where the time went.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeOpenAccount, encodeTransfer } from './devices.mjs';
import { clientId, mutation, PushConnection, pushBody, SpaceWire } from './wire.mjs';

export const CLIENTS = 10;
const ACCOUNTS = 1000;

/** CPU seconds (user + system) process `pid` has used: where a run's time went. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** Runs fn; { seconds, serverCpu, clientCpu } besides its value (CPU in seconds). */
async function timed(pid, fn) {
  const server0 = cpuSeconds(pid);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const client = process.cpuUsage(client0);
  return { value, seconds, serverCpu: cpuSeconds(pid) - server0, clientCpu: (client.user + client.system) / 1e6 };
}

/** Deterministic account pairs (a small LCG): the runs are the same each time. */
function pairs(seed) {
  let x = seed;
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % ACCOUNTS;
  return () => {
    const from = next();
    let to = next();
    if (to === from) to = (to + 1) % ACCOUNTS;
    return [from, to];
  };
}

/**
 * 10 clients, `pushes` pushes each of `batch` transfers. { mutations, seconds, perSecond,
 * pushesPerSecond, commits, perCommit }.
 */
async function pushRun(url, pid, space, { batch, pushes }) {
  const wire = new SpaceWire(url, space);
  const owner = clientId('owner');
  await wire.push(owner, [mutation(1, 'open_account', encodeOpenAccount(0, ACCOUNTS, 1e12))]);
  const bodies = [];
  for (let c = 0; c < CLIENTS; ++c) {
    const client = clientId(`tput${c}`);
    const connection = new PushConnection(url, space);
    const draw = pairs(c + 1);
    const list = [];
    let id = 0;
    for (let p = 0; p < pushes; ++p) {
      const mutations = [];
      for (let i = 0; i < batch; ++i) mutations.push(mutation(++id, 'transfer', encodeTransfer(...draw(), 1)));
      list.push(connection.prepare(pushBody(client, mutations)));
    }
    bodies.push({ client, connection, list, last: id });
  }
  const before = (await wire.push(owner, [])).version;
  const { seconds, serverCpu, clientCpu } = await timed(pid, () =>
    Promise.all(
      bodies.map(async ({ client, connection, list, last }) => {
        let text;
        for (const request of list) text = await connection.send(request);
        const answer = JSON.parse(text);
        if (answer.lastMutationId !== last || answer.failed.length !== 0) {
          throw new Error(`figure 2: ${client} ended at ${answer.lastMutationId}, not ${last} (failed: ${answer.failed.length})`);
        }
      }),
    ),
  );
  for (const { connection } of bodies) connection.close();
  const after = (await wire.push(owner, [])).version;
  const mutations = CLIENTS * pushes * batch;
  const commits = after - before;
  return {
    batch,
    mutations,
    seconds,
    perSecond: mutations / seconds,
    pushesPerSecond: (CLIENTS * pushes) / seconds,
    commits,
    commitsPerSecond: commits / seconds,
    perCommit: mutations / commits,
    serverCpu,
    clientCpu,
  };
}

/** Empty pushes from 10 clients: { perSecond, serverCpu, clientCpu } with nothing to commit. */
async function noopRate(url, pid, space, requests) {
  const connections = Array.from({ length: CLIENTS }, () => new PushConnection(url, space));
  const bodies = connections.map((connection, c) => connection.prepare(pushBody(clientId(`noop${c}`), [])));
  const { seconds, serverCpu, clientCpu } = await timed(pid, () =>
    Promise.all(
      connections.map(async (connection, c) => {
        for (let i = 0; i < requests; ++i) await connection.send(bodies[c]);
      }),
    ),
  );
  for (const connection of connections) connection.close();
  return { requests: CLIENTS * requests, perSecond: (CLIENTS * requests) / seconds, seconds, serverCpu, clientCpu };
}

/** Synchronous 4 KiB writes per second in `dir` (the disk's durable-write rate). */
export function fdatasyncRate(dir = tmpdir(), writes = 300) {
  const scratch = mkdtempSync(join(dir, 'keepstate-fsync-'));
  const fd = openSync(join(scratch, 'f'), 'w');
  const block = Buffer.alloc(4096, 0xa5);
  try {
    writeSync(fd, block, 0, block.length, 0);
    fdatasyncSync(fd);
    const t0 = performance.now();
    for (let i = 0; i < writes; ++i) {
      writeSync(fd, block, 0, block.length, (i % 64) * 4096);
      fdatasyncSync(fd);
    }
    return writes / ((performance.now() - t0) / 1000);
  } finally {
    closeSync(fd);
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The figure on one server: { runs: [batch 100, batch 1], noop }. */
export async function measureThroughput(url, pid, tag, { quick = false } = {}) {
  await pushRun(url, pid, `tput-warmup-${tag}-${process.pid}`, { batch: 100, pushes: 5 });
  const runs = [
    await pushRun(url, pid, `tput-100-${tag}-${process.pid}`, { batch: 100, pushes: quick ? 20 : 100 }),
    await pushRun(url, pid, `tput-1-${tag}-${process.pid}`, { batch: 1, pushes: quick ? 200 : 1000 }),
  ];
  const noop = await noopRate(url, pid, `tput-noop-${tag}-${process.pid}`, quick ? 200 : 1000);
  return { clients: CLIENTS, runs, noop };
}
