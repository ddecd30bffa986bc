// Figure 6: poke sockets held by one server process. Opens `count` plain WebSocket clients on
// one space (each authorized, each waiting for its first poke), reads the server's VmRSS
// (/proc/PID/status) before and after, then makes one push and waits until every socket has
// been poked with the new version. Sockets open in waves of 100 (the listen backlog).
import { readFileSync } from 'node:fs';
import { clientId, mutation, nextPoke, putArgs, SpaceWire } from './wire.mjs';

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

export async function measureSockets(url, pid, { count = 1000 } = {}) {
  const wire = new SpaceWire(url, `sockets-${process.pid}`);
  const writer = clientId('poker');
  let { version } = await wire.push(writer, [mutation(1, 'keepstate.put', putArgs('k', Buffer.from('v')))]);
  // Warm the space's socket path with a few sockets first, so the baseline holds what every server has.
  const warm = await Promise.all(Array.from({ length: 10 }, () => wire.poke()));
  for (const { socket } of warm) socket.terminate();
  await settle();
  const rssBefore = rssBytes(pid);
  const sockets = [];
  try {
    for (let opened = 0; opened < count; opened += 100) {
      const wave = await Promise.all(Array.from({ length: Math.min(100, count - opened) }, () => wire.poke()));
      for (const { socket } of wave) sockets.push(socket);
    }
    await settle();
    const rssAfter = rssBytes(pid);
    const t0 = performance.now();
    const poked = sockets.map((socket) => nextPoke(socket, version + 1));
    ({ version } = await wire.push(writer, [mutation(2, 'keepstate.put', putArgs('k', Buffer.from('w')))]));
    const acknowledgedMs = performance.now() - t0;
    const heard = await Promise.all(poked);
    const allMs = performance.now() - t0;
    if (heard.some((poke) => poke.version !== version)) throw new Error('figure 6: a socket was poked with another version');
    if (heard.some((poke) => poke.entries?.length !== 1)) throw new Error("figure 6: a socket's poke lacked the commit's patch");
    return { count, poked: heard.length, rssBefore, rssAfter, perClient: (rssAfter - rssBefore) / count, acknowledgedMs, allMs };
  } finally {
    for (const socket of sockets) socket.terminate();
  }
}
