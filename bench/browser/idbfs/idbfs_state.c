// The IDBFS contender of bench/browser: what an Emscripten app that keeps its
// state in a file does. The state is one file in MEMFS (mounted on IDBFS by
// the page); C writes it with stdio, and the page persists it with
// FS.syncfs(false) (IDBFS stores each changed file as one IndexedDB record)
// and loads it back with FS.syncfs(true).
//
// Every function returns 0 on success and -1 (errno set) on failure.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define KS_CHUNK (1u << 20)
static unsigned char chunk[KS_CHUNK];

// Pseudo-random (incompressible) bytes for offset `at` of a state written at
// generation `seed`; offsets are multiples of 8 here.
static void Pattern(unsigned char* out, size_t n, uint64_t at, uint32_t seed) {
  for (size_t i = 0; i < n; i += 8) {
    uint64_t z = ((at + i) >> 3) + ((uint64_t)seed << 40) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    memcpy(out + i, &z, n - i < 8 ? n - i : 8);
  }
}

// Creates (or truncates) `path` with `bytes` bytes of state.
int ks_idbfs_fill(const char* path, double bytes, uint32_t seed) {
  FILE* f = fopen(path, "wb");
  if (f == NULL) return -1;
  uint64_t total = (uint64_t)bytes;
  for (uint64_t at = 0; at < total; at += KS_CHUNK) {
    size_t n = total - at < KS_CHUNK ? (size_t)(total - at) : KS_CHUNK;
    Pattern(chunk, n, at, seed);
    if (fwrite(chunk, 1, n, f) != n) {
      fclose(f);
      return -1;
    }
  }
  return fclose(f) == 0 ? 0 : -1;
}

// Rewrites `bytes` bytes at `offset` of `path` in place (the changed part of
// the state).
int ks_idbfs_touch(const char* path, double offset, double bytes, uint32_t seed) {
  FILE* f = fopen(path, "r+b");
  if (f == NULL) return -1;
  if (fseek(f, (long)offset, SEEK_SET) != 0) {
    fclose(f);
    return -1;
  }
  uint64_t total = (uint64_t)bytes;
  for (uint64_t at = 0; at < total; at += KS_CHUNK) {
    size_t n = total - at < KS_CHUNK ? (size_t)(total - at) : KS_CHUNK;
    Pattern(chunk, n, (uint64_t)offset + at, seed);
    if (fwrite(chunk, 1, n, f) != n) {
      fclose(f);
      return -1;
    }
  }
  return fclose(f) == 0 ? 0 : -1;
}

// A checksum of the whole file read through stdio (the restored state is
// usable once it is readable; this proves it and checks the bytes came
// back). Returns the checksum as a double (exact below 2^53), -1 on error.
double ks_idbfs_checksum(const char* path) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) return -1;
  uint64_t sum = 0;
  size_t n;
  while ((n = fread(chunk, 1, KS_CHUNK, f)) > 0) {
    for (size_t i = 0; i < n; i += 64) sum = (sum * 31 + chunk[i]) & ((1ull << 52) - 1);
  }
  fclose(f);
  return (double)sum;
}
