// keepstate-conformance: the native side of the determinism conformance
// suite (docs/sync.md, "Determinism"). Sync runs an app's mutators natively
// on a server and as wasm in the browser, and the two states must be byte
// for byte the same; run.mjs runs the sequences of one file (generate.mjs)
// here and in the package, and compares what both print.
//
//   keepstate-conformance run FILE [--pages DIR]
//       one line per sequence: seed, mutations, outcomes hash, state hash,
//       entries (tab-separated); the sequences that compare pages leave
//       their exported snapshot file in DIR as <seed>.ksnap
//   keepstate-conformance trace FILE SEED
//       one line per mutation of sequence SEED: index, status code, the hash
//       of its outcome alone, the state hash after it
//   keepstate-conformance dump FILE SEED STOP
//       the entries after the first STOP mutations of sequence SEED: key and
//       value in hex, one entry a line, in key order
//
// Each sequence runs on a fresh Replica over a MemoryRecordStore, with the
// options the browser's openStore uses by default (so the pages can match),
// committing after the mutations the sequence marks, as the wasm side does.
//
// Exit codes: 0 ok; 1 the file could not be read, or the harness failed (a
// commit or an export: not a mutator's outcome, which is data); 2 usage.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hashes.h"
#include "keepstate/persistence/record_store.h"
#include "keepstate/replica/replica.h"
#include "keepstate/replica/runner.h"
#include "keepstate/status.h"
#include "sequence_file.h"

namespace {

using keepstate::CodeName;
using keepstate::Result;
using keepstate::Status;
using keepstate::conformance::Fnv64;
using keepstate::conformance::FoldOutcome;
using keepstate::conformance::Sequence;
using keepstate::conformance::SequenceReader;
using keepstate::replica::Replica;
using keepstate::replica::Runner;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "usage: keepstate-conformance run FILE [--pages DIR]\n"
    "       keepstate-conformance trace FILE SEED\n"
    "       keepstate-conformance dump FILE SEED STOP\n";

// The snapshot file's creation time: informational, and outside the pages
// the suite compares, so any constant does.
constexpr std::uint64_t kNowUnixMs = 0;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

Result<std::string> ReadFile(const char* path) {
  File f(std::fopen(path, "rb"));
  if (!f) return Status::NotFound(std::string(path) + ": " + std::strerror(errno));
  std::string bytes;
  char buffer[1 << 16];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f.get())) > 0;) bytes.append(buffer, n);
  if (std::ferror(f.get())) return Status::Internal(std::string(path) + ": read error");
  return bytes;
}

std::string_view Chars(const std::vector<std::uint8_t>& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// One sequence being run: a fresh Replica, its records, and the Runner that
// calls mutators on it as the module's C ABI does in the browser.
class Run {
 public:
  Run() : replica_(Replica::OptionsFor(0, 0, /*writer_id=*/1)), runner_(&replica_) {}

  Status Open() {
    Result<keepstate::persistence::OpenReport> opened = replica_.Restore(records_);
    return opened.ok() ? Status::Ok() : opened.status();
  }

  // Runs mutation m, folds its outcome into `outcomes` (and into `alone`, if
  // given: that outcome's own hash), then commits if m says so.
  Status Step(const keepstate::conformance::Mutation& m, Fnv64& outcomes, Fnv64* alone, std::string* code) {
    Result<keepstate::sdk::Bytes> r = runner_.Run(m.name, m.args);
    const std::string_view name = CodeName(r.status().code());
    const std::string_view bytes = r.ok() ? Chars(*r) : std::string_view(r.status().message());
    FoldOutcome(outcomes, name, bytes);
    if (alone != nullptr) FoldOutcome(*alone, name, bytes);
    if (code != nullptr) *code = name;
    return m.commit_after ? CommitIfDirty() : Status::Ok();
  }

  Status CommitIfDirty() { return replica_.dirty() ? replica_.Commit(records_, kNowUnixMs) : Status::Ok(); }

  // fn(key, value) per entry, in key order.
  template <typename Fn>
  Status Entries(Fn&& fn) const {
    return replica_.Scan(false, keepstate::engine::ScanOptions{}, [&](std::string_view k, std::string_view v) {
      fn(k, v);
      return true;
    });
  }

  // The state hash (hash.mjs, stateHash) and the number of entries.
  Status StateHash(std::string* hex, std::uint64_t* entries) const {
    Fnv64 h;
    std::uint64_t n = 0;
    KEEPSTATE_RETURN_IF_ERROR(Entries([&](std::string_view k, std::string_view v) {
      h.Field(k).Field(v);
      ++n;
    }));
    *hex = h.Hex();
    if (entries != nullptr) *entries = n;
    return Status::Ok();
  }

  // Commits what is left and writes the committed state as a snapshot file.
  Status Export(const std::string& path) {
    KEEPSTATE_RETURN_IF_ERROR(CommitIfDirty());
    KEEPSTATE_ASSIGN_OR_RETURN(std::uint64_t size, replica_.BeginExport(kNowUnixMs));
    File f(std::fopen(path.c_str(), "wb"));
    if (!f) return Status::Internal(path + ": " + std::strerror(errno));
    std::vector<std::uint8_t> chunk(1 << 16);
    std::uint64_t written = 0;
    for (;;) {
      Result<std::size_t> n = replica_.ReadExport(chunk);
      if (!n.ok()) {
        replica_.EndExport();
        return n.status();
      }
      if (*n == 0) break;
      if (std::fwrite(chunk.data(), 1, *n, f.get()) != *n) return Status::Internal(path + ": write error");
      written += *n;
    }
    replica_.EndExport();
    if (written != size) return Status::Internal(path + ": exported " + std::to_string(written) + " of " +
                                                 std::to_string(size) + " bytes");
    return Status::Ok();
  }

 private:
  keepstate::persistence::MemoryRecordStore records_;
  Replica replica_;
  Runner runner_;
};

int Fail(const Status& s, const std::string& what) {
  std::fprintf(stderr, "keepstate-conformance: %s: %s\n", what.c_str(), s.ToString().c_str());
  return kExitFailure;
}

int RunAll(const std::vector<Sequence>& sequences, const char* pages_dir) {
  for (const Sequence& s : sequences) {
    const std::string what = "seed " + std::to_string(s.seed);
    Run run;
    if (Status st = run.Open(); !st.ok()) return Fail(st, what);
    Fnv64 outcomes;
    for (const auto& m : s.mutations) {
      if (Status st = run.Step(m, outcomes, nullptr, nullptr); !st.ok()) return Fail(st, what + ", commit");
    }
    if (s.compare_pages && pages_dir != nullptr) {
      const std::string path = std::string(pages_dir) + "/" + std::to_string(s.seed) + ".ksnap";
      if (Status st = run.Export(path); !st.ok()) return Fail(st, what + ", export");
    }
    std::string state;
    std::uint64_t entries = 0;
    if (Status st = run.StateHash(&state, &entries); !st.ok()) return Fail(st, what);
    std::printf("%u\t%zu\t%s\t%s\t%llu\n", s.seed, s.mutations.size(), outcomes.Hex().c_str(), state.c_str(),
                static_cast<unsigned long long>(entries));
  }
  return kExitOk;
}

int Trace(const Sequence& s) {
  Run run;
  if (Status st = run.Open(); !st.ok()) return Fail(st, "open");
  Fnv64 outcomes;
  for (std::size_t i = 0; i < s.mutations.size(); ++i) {
    Fnv64 alone;
    std::string code, state;
    if (Status st = run.Step(s.mutations[i], outcomes, &alone, &code); !st.ok()) return Fail(st, "commit");
    if (Status st = run.StateHash(&state, nullptr); !st.ok()) return Fail(st, "scan");
    std::printf("%zu\t%s\t%s\t%s\n", i, code.c_str(), alone.Hex().c_str(), state.c_str());
  }
  return kExitOk;
}

std::string Hex(std::string_view b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * b.size());
  for (unsigned char c : b) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

int Dump(const Sequence& s, std::size_t stop) {
  Run run;
  if (Status st = run.Open(); !st.ok()) return Fail(st, "open");
  Fnv64 outcomes;
  for (std::size_t i = 0; i < stop && i < s.mutations.size(); ++i) {
    if (Status st = run.Step(s.mutations[i], outcomes, nullptr, nullptr); !st.ok()) return Fail(st, "commit");
  }
  Status st = run.Entries([](std::string_view k, std::string_view v) {
    std::printf("%s\t%s\n", Hex(k).c_str(), Hex(v).c_str());
  });
  return st.ok() ? kExitOk : Fail(st, "scan");
}

std::optional<std::uint64_t> ParseUint(const char* s) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || *s == '-') return std::nullopt;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return std::fputs(kUsage, stderr), kExitUsage;
  const std::string_view command = argv[1];
  Result<std::string> bytes = ReadFile(argv[2]);
  if (!bytes.ok()) return Fail(bytes.status(), "reading the sequences");
  Result<std::vector<Sequence>> sequences = SequenceReader(*bytes).ReadAll();
  if (!sequences.ok()) return Fail(sequences.status(), argv[2]);

  if (command == "run") {
    const char* pages = nullptr;
    if (argc == 5 && std::string_view(argv[3]) == "--pages") {
      pages = argv[4];
    } else if (argc != 3) {
      return std::fputs(kUsage, stderr), kExitUsage;
    }
    return RunAll(*sequences, pages);
  }
  if ((command == "trace" && argc == 4) || (command == "dump" && argc == 5)) {
    const std::optional<std::uint64_t> seed = ParseUint(argv[3]);
    const std::optional<std::uint64_t> stop = command == "dump" ? ParseUint(argv[4]) : std::optional<std::uint64_t>(0);
    if (!seed || !stop) return std::fputs(kUsage, stderr), kExitUsage;
    for (const Sequence& s : *sequences) {
      if (s.seed != *seed) continue;
      return command == "trace" ? Trace(s) : Dump(s, static_cast<std::size_t>(*stop));
    }
    std::fprintf(stderr, "keepstate-conformance: no sequence has seed %llu\n", static_cast<unsigned long long>(*seed));
    return kExitFailure;
  }
  return std::fputs(kUsage, stderr), kExitUsage;
}
