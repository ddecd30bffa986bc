// The conformance suite's two hashes, computed the same way by the native
// runner (conformance.cc, Fnv64) and here:
//   outcomes  per mutation, in order: field(status code name: "ok",
//             "invalid-argument", ...), then field(result bytes if ok, else
//             the error message as UTF-8);
//   state     per entry, in key order: field(key), field(value);
// where field(b) = u32 little-endian length of b, then b, and the hash is
// 64-bit FNV-1a over the bytes so produced. FNV-1a is chosen for being
// trivially identical in both languages, not for strength: the suite looks
// for accidents, not adversaries.
const OFFSET_HI = 0xcbf29ce4;
const OFFSET_LO = 0x84222325;
const utf8 = new TextEncoder();

/** 64-bit FNV-1a in two 32-bit halves (a BigInt per byte is several times slower). */
export class Fnv64 {
  hi = OFFSET_HI;
  lo = OFFSET_LO;

  bytes(b) {
    let { hi, lo } = this;
    for (let i = 0; i < b.length; ++i) {
      lo ^= b[i];
      // h * 0x100000001b3 mod 2^64 = h * 0x1b3 + (h << 40).
      const low = (lo >>> 0) * 0x1b3;
      const carry = Math.floor(low / 0x1_0000_0000);
      hi = (hi * 0x1b3 + carry + ((lo << 8) >>> 0)) >>> 0;
      lo = low >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
    return this;
  }

  /** u32 LE length, then the bytes (a string is taken as its UTF-8). */
  field(b) {
    if (typeof b === 'string') b = utf8.encode(b);
    const n = b.length;
    this.bytes([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]);
    return this.bytes(b);
  }

  hex() {
    return this.hi.toString(16).padStart(8, '0') + this.lo.toString(16).padStart(8, '0');
  }
}

/** The outcome of one mutation folded into `h`: { code, bytes } (bytes: the result or the message). */
export function foldOutcome(h, outcome) {
  return h.field(outcome.code).field(outcome.bytes);
}

/** The state hash of entries [[key bytes, value bytes], ...] in key order. */
export function stateHash(entries) {
  const h = new Fnv64();
  for (const [k, v] of entries) h.field(k).field(v);
  return h.hex();
}
