// Producing on purpose the state in which Chromium deletes an origin's whole
// IndexedDB (docs/crash-safety.md): a LevelDB log that ends in a torn record.
import { appendFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const BLOCK = 32 * 1024; // LevelDB's log block (db/log_format.h)
const HEADER = 7; // crc32 (4), length (2), type (1)

/** The `*.indexeddb.leveldb` folder of `origin` (http://127.0.0.1:port) in a Chromium profile. */
export function indexedDBFolder(profile: string, origin: string): string {
  const url = new URL(origin);
  return join(profile, 'Default', 'IndexedDB', `${url.protocol.slice(0, -1)}_${url.hostname}_${url.port}.indexeddb.leveldb`);
}

/**
 * Appends what a kill in the middle of a log write leaves behind: a record
 * header (type FIRST, claiming `length` bytes) and no payload, at the end of
 * the newest log (zero padding first if the header does not fit in the block,
 * as LevelDB's writer pads). REQUIRES: the browser is down.
 */
export function tearNewestLog(folder: string, length = 15_652): { log: string; sizeBefore: number } {
  const logs = readdirSync(folder).filter((n) => /^\d+\.log$/.test(n)).sort((a, b) => parseInt(b) - parseInt(a));
  if (logs.length === 0) throw new Error(`no LevelDB log in ${folder}: ${readdirSync(folder).join(', ')}`);
  const log = join(folder, logs[0]!);
  const sizeBefore = statSync(log).size;
  const left = BLOCK - (sizeBefore % BLOCK);
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(0x12345678, 0); // any crc: the payload is missing anyway
  header.writeUInt16LE(length, 4);
  header.writeUInt8(2, 6); // kFirstType
  appendFileSync(log, left < HEADER ? Buffer.concat([Buffer.alloc(left), header]) : header);
  return { log, sizeBefore };
}
