// keepstate-snapshot: the native tool for snapshot files (docs/sdk.md,
// "keepstate-snapshot"; the format: docs/snapshot-format.md, "Snapshot
// file"). It runs the library's own writer and verifying reader, so a file it
// builds is exactly what store.export() writes and importStore() accepts.
//
//   keepstate-snapshot inspect FILE
//   keepstate-snapshot verify FILE
//   keepstate-snapshot dump FILE [--prefix P] [--hex]
//   keepstate-snapshot build FILE [--schema-version N] [--page-size N] < entries.jsonl
//
// Exit codes: 0 ok; 1 the file (or build's input) failed verification or
// could not be read or written; 2 usage.
//
// Input of build: one JSON object per line, {"key": K, "value": V}, K and V
// JSON strings stored as their UTF-8 bytes; "key_hex" instead of "key",
// "value_hex" or "value_base64" instead of "value" for binary bytes. Blank
// lines are skipped; a later line for the same key replaces the earlier one.
// dump prints the same shape, so `dump A | build B` copies a store. The JSON
// reader below accepts exactly this shape (objects of string members), which
// is all the tool needs; no JSON library is installed on the build machines.
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keepstate/engine/store.h"
#include "keepstate/persistence/snapshot_file.h"
#include "keepstate/status.h"

namespace {

using keepstate::Result;
using keepstate::Status;
using keepstate::persistence::ImportedSnapshot;
using keepstate::persistence::SnapshotFileInfo;
using keepstate::persistence::SnapshotReader;
using keepstate::persistence::SnapshotReaderOptions;
using keepstate::persistence::SnapshotWriter;

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr std::size_t kChunk = 1 << 20;

constexpr char kUsage[] =
    "usage: keepstate-snapshot inspect FILE\n"
    "       keepstate-snapshot verify FILE\n"
    "       keepstate-snapshot dump FILE [--prefix P] [--hex]\n"
    "       keepstate-snapshot build FILE [--schema-version N] [--page-size N] < entries.jsonl\n"
    "build reads JSON lines {\"key\": ..., \"value\": ...} (or \"key_hex\", \"value_hex\",\n"
    "\"value_base64\"); dump prints the same. Exit: 0 ok, 1 verification failure, 2 usage.\n";

int Usage(const std::string& why) {
  std::fprintf(stderr, "keepstate-snapshot: %s\n%s", why.c_str(), kUsage);
  return kExitUsage;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

void Out(std::string_view s) { std::fwrite(s.data(), 1, s.size(), stdout); }

bool ParseUint(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

// --- reading a file -----------------------------------------------------------

struct Opened {
  std::optional<SnapshotFileInfo> info;  // the header, if it verified
  Result<ImportedSnapshot> result = Status::Internal("not read");
};

// Streams `path` through the verifying reader in 1 MiB chunks.
Opened ReadSnapshot(const std::string& path) {
  Opened o;
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    o.result = Status::NotFound(path + ": " + std::strerror(errno));
    return o;
  }
  SnapshotReaderOptions options;
  struct stat st;
  if (fstat(fileno(f.get()), &st) == 0 && S_ISREG(st.st_mode)) {
    options.file_size = static_cast<std::uint64_t>(st.st_size);
  }
  SnapshotReader reader(options);
  std::vector<std::uint8_t> buf(kChunk);
  Status s;
  while (s.ok()) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    if (n == 0) break;
    s = reader.Add({buf.data(), n});
  }
  if (s.ok() && std::ferror(f.get())) s = Status::Internal(path + ": read error");
  o.info = reader.info();
  o.result = s.ok() ? std::move(reader).Finish() : Result<ImportedSnapshot>(s);
  return o;
}

int ReportFailure(const std::string& path, const Status& s) {
  std::fprintf(stderr, "keepstate-snapshot: %s: %s\n", path.c_str(), s.ToString().c_str());
  return kExitFailure;
}

std::string IsoTime(std::uint64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) return "?";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(unix_ms % 1000));
  return buf;
}

int Inspect(const std::string& path) {
  Opened o = ReadSnapshot(path);
  if (o.info) {
    const SnapshotFileInfo& i = *o.info;
    std::printf("file            %s\n", path.c_str());
    std::printf("format          keepstate snapshot file, format %u\n", i.format_version);
    std::printf("page size       %u\n", i.page_size);
    std::printf("pages           %u\n", i.page_count);
    std::printf("entries         %llu\n", static_cast<unsigned long long>(i.entry_count));
    std::printf("schema version  %llu\n", static_cast<unsigned long long>(i.user_version));
    std::printf("store version   %llu\n", static_cast<unsigned long long>(i.store_version));
    std::printf("created         %s (%llu ms)\n", IsoTime(i.created_unix_ms).c_str(),
                static_cast<unsigned long long>(i.created_unix_ms));
    std::printf("size            %llu bytes\n", static_cast<unsigned long long>(i.file_size));
    std::printf("verified        %s\n", o.result.ok() ? "yes" : "no");
  }
  if (!o.result.ok()) return ReportFailure(path, o.result.status());
  return kExitOk;
}

int Verify(const std::string& path) {
  Opened o = ReadSnapshot(path);
  if (!o.result.ok()) return ReportFailure(path, o.result.status());
  const SnapshotFileInfo& i = o.result->info;
  std::printf("%s: ok (%u pages of %u bytes, %llu entries, schema version %llu)\n", path.c_str(),
              i.page_count, i.page_size, static_cast<unsigned long long>(i.entry_count),
              static_cast<unsigned long long>(i.user_version));
  return kExitOk;
}

// --- JSON lines ---------------------------------------------------------------

// Length of the UTF-8 sequence at s[i] if it is a valid one (no overlongs,
// surrogates or code points above U+10FFFF), else 0.
std::size_t Utf8Length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n;
  std::uint32_t cp;
  if ((c & 0xe0) == 0xc0) {
    n = 2, cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

bool IsUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = Utf8Length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void AppendUtf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A reader for one line holding one JSON object whose members are all
// strings (RFC 8259 strings: escapes, \u with surrogate pairs, no raw
// control characters). Errors name the column.
class LineParser {
 public:
  explicit LineParser(std::string_view line) : s_(line) {}

  // Calls member(name, value) for each member; returns "" or the error.
  template <typename F>
  std::string ParseObject(F&& member) {
    SkipSpace();
    if (!Eat('{')) return Error("expected '{'");
    SkipSpace();
    if (!Eat('}')) {
      for (;;) {
        std::string name, value;
        SkipSpace();
        if (std::string e = ParseString(name); !e.empty()) return e;
        SkipSpace();
        if (!Eat(':')) return Error("expected ':' after a member name");
        SkipSpace();
        if (i_ < s_.size() && s_[i_] != '"') {
          return Error("member \"" + name + "\" must be a JSON string");
        }
        if (std::string e = ParseString(value); !e.empty()) return e;
        if (std::string e = member(name, std::move(value)); !e.empty()) return e;
        SkipSpace();
        if (Eat('}')) break;
        if (!Eat(',')) return Error("expected ',' or '}'");
      }
    }
    SkipSpace();
    if (i_ != s_.size()) return Error("unexpected text after the object");
    return "";
  }

 private:
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::string Error(const std::string& what) const {
    return "column " + std::to_string(i_ + 1) + ": " + what;
  }
  bool Hex4(std::uint32_t& out) {
    if (i_ + 4 > s_.size()) return false;
    out = 0;
    for (int k = 0; k < 4; ++k) {
      const int d = HexDigit(s_[i_ + k]);
      if (d < 0) return false;
      out = out << 4 | static_cast<std::uint32_t>(d);
    }
    i_ += 4;
    return true;
  }
  std::string ParseString(std::string& out) {
    if (!Eat('"')) return Error("expected a string");
    for (;;) {
      if (i_ >= s_.size()) return Error("unterminated string");
      const char c = s_[i_];
      if (c == '"') {
        ++i_;
        return "";
      }
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character in a string");
      if (c != '\\') {
        const std::size_t n = Utf8Length(s_, i_);
        if (n == 0) return Error("invalid UTF-8");
        out.append(s_.substr(i_, n));
        i_ += n;
        continue;
      }
      if (++i_ >= s_.size()) return Error("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          std::uint32_t cp;
          if (!Hex4(cp)) return Error("bad \\u escape");
          if (cp >= 0xdc00 && cp <= 0xdfff) return Error("lone low surrogate");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            std::uint32_t lo;
            if (!Eat('\\') || !Eat('u') || !Hex4(lo) || lo < 0xdc00 || lo > 0xdfff) {
              return Error("high surrogate without its low surrogate");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Error(std::string("bad escape \\") + e);
      }
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

bool DecodeHex(std::string_view s, std::string& out) {
  if (s.size() % 2 != 0) return false;
  out.clear();
  for (std::size_t i = 0; i < s.size(); i += 2) {
    const int hi = HexDigit(s[i]), lo = HexDigit(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

// Standard base64 (RFC 4648 section 4) with padding.
bool DecodeBase64(std::string_view s, std::string& out) {
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (s.size() % 4 != 0) return false;
  out.clear();
  for (std::size_t i = 0; i < s.size(); i += 4) {
    const bool last = i + 4 == s.size();
    const int pad = last ? (s[i + 3] == '=') + (s[i + 2] == '=' && s[i + 3] == '=') : 0;
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s[i + k];
      int d = value(c);
      if (d < 0) {
        if (c != '=' || k < 4 - pad) return false;
        d = 0;
      }
      v = v << 6 | static_cast<std::uint32_t>(d);
    }
    out.push_back(static_cast<char>(v >> 16));
    if (pad < 2) out.push_back(static_cast<char>(v >> 8 & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xff));
  }
  return true;
}

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += "\\u00";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 15]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void AppendHex(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(kHex[u >> 4]);
    out.push_back(kHex[u & 15]);
  }
  out.push_back('"');
}

// --- dump and build -------------------------------------------------------------

int Dump(const std::string& path, std::string_view prefix, bool hex) {
  Opened o = ReadSnapshot(path);
  if (!o.result.ok()) return ReportFailure(path, o.result.status());
  std::string end;
  const keepstate::engine::ScanOptions scan = keepstate::engine::PrefixScan(prefix, &end);
  std::string line;
  o.result->store->Scan(scan, [&](std::string_view k, std::string_view v) {
    line.clear();
    const bool key_text = !hex && IsUtf8(k);
    const bool value_text = !hex && IsUtf8(v);
    line += key_text ? "{\"key\": " : "{\"key_hex\": ";
    key_text ? AppendJsonString(line, k) : AppendHex(line, k);
    line += value_text ? ", \"value\": " : ", \"value_hex\": ";
    value_text ? AppendJsonString(line, v) : AppendHex(line, v);
    line += "}\n";
    Out(line);
    return true;
  });
  if (std::fflush(stdout) != 0) return ReportFailure("stdout", Status::Internal("write error"));
  return kExitOk;
}

// One line without its '\n' (POSIX getline: any length, NUL bytes kept).
bool ReadLine(std::FILE* in, std::string& line) {
  struct Buffer {
    char* p = nullptr;
    std::size_t cap = 0;
    ~Buffer() { std::free(p); }
  };
  static Buffer buf;
  const ssize_t n = getline(&buf.p, &buf.cap, in);
  if (n < 0) return false;
  line.assign(buf.p, static_cast<std::size_t>(n));
  if (!line.empty() && line.back() == '\n') line.pop_back();
  return true;
}

std::uint64_t NowUnixMs() {
  // Reproducible builds: SOURCE_DATE_EPOCH (seconds) fixes the time.
  if (const char* epoch = std::getenv("SOURCE_DATE_EPOCH")) {
    std::uint64_t secs;
    if (ParseUint(epoch, secs) && secs <= UINT64_MAX / 1000) return secs * 1000;
  }
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

int Build(const std::string& path, std::uint64_t schema_version, std::uint32_t page_size) {
  Result<std::unique_ptr<keepstate::engine::Store>> created =
      keepstate::engine::Store::Create({page_size});
  if (!created.ok()) return Usage("--page-size: " + created.status().message());
  keepstate::engine::Store& store = **created;

  std::string line;
  std::uint64_t line_no = 0;
  std::uint64_t entries = 0;
  while (ReadLine(stdin, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::optional<std::string> key, value;
    LineParser parser(line);
    std::string error = parser.ParseObject([&](const std::string& name, std::string v) -> std::string {
      std::string* slot;
      std::string bytes;
      if (name == "key" || name == "key_hex") {
        slot = key ? nullptr : &key.emplace();
      } else if (name == "value" || name == "value_hex" || name == "value_base64") {
        slot = value ? nullptr : &value.emplace();
      } else {
        return "unknown member \"" + name +
               "\" (expected key or key_hex, and value, value_hex or value_base64)";
      }
      if (slot == nullptr) return "more than one " + name.substr(0, name.find('_')) + " member";
      if (name.ends_with("_hex")) {
        if (!DecodeHex(v, *slot)) return name + " is not an even number of hex digits";
      } else if (name == "value_base64") {
        if (!DecodeBase64(v, *slot)) return "value_base64 is not padded base64";
      } else {
        *slot = std::move(v);
      }
      return "";
    });
    if (error.empty() && !key) error = "no key (\"key\" or \"key_hex\")";
    if (error.empty() && !value) error = "no value (\"value\", \"value_hex\" or \"value_base64\")";
    if (error.empty()) {
      if (Status s = store.Put(*key, *value); !s.ok()) error = s.ToString();
    }
    if (!error.empty()) {
      std::fprintf(stderr, "keepstate-snapshot: stdin line %llu: %s (nothing written)\n",
                   static_cast<unsigned long long>(line_no), error.c_str());
      return kExitFailure;
    }
    ++entries;
  }
  if (std::ferror(stdin)) return ReportFailure("stdin", Status::Internal("read error"));
  store.arena().SetUserVersion(schema_version);
  // The built state is what the file holds: nothing else is uncommitted.
  store.arena().ClearAllDirty();

  Result<SnapshotWriter> writer = SnapshotWriter::Begin(store.arena(), {0, NowUnixMs()});
  if (!writer.ok()) return ReportFailure(path, writer.status());
  // Written beside the target and renamed over it, so a failed build never
  // leaves a partial file under the name.
  const std::string tmp = path + ".tmp";
  File f(std::fopen(tmp.c_str(), "wb"));
  if (!f) return ReportFailure(tmp, Status::Internal(std::strerror(errno)));
  std::vector<std::uint8_t> buf(kChunk);
  while (!writer->done()) {
    Result<std::size_t> n = writer->Read(buf);
    if (!n.ok()) return ReportFailure(path, n.status());
    if (std::fwrite(buf.data(), 1, *n, f.get()) != *n) {
      std::remove(tmp.c_str());
      return ReportFailure(tmp, Status::Internal("write error"));
    }
  }
  if (std::fclose(f.release()) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return ReportFailure(path, Status::Internal(std::strerror(errno)));
  }
  std::printf("%s: %llu lines, %llu entries, %u pages, schema version %llu\n", path.c_str(),
              static_cast<unsigned long long>(entries),
              static_cast<unsigned long long>(store.Count()), store.arena().page_count(),
              static_cast<unsigned long long>(schema_version));
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    if (args.empty()) return Usage("no command");
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  const std::string command = args[0];
  std::vector<std::string> positional;
  std::optional<std::string> prefix;
  bool hex = false;
  std::uint64_t schema_version = 0;
  std::uint64_t page_size = keepstate::engine::kDefaultPageSize;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--prefix" && command == "dump" && has_value) {
      prefix = args[++i];
    } else if (a == "--hex" && command == "dump") {
      hex = true;
    } else if (a == "--schema-version" && command == "build" && has_value) {
      if (!ParseUint(args[++i], schema_version)) return Usage("--schema-version needs a number");
    } else if (a == "--page-size" && command == "build" && has_value) {
      if (!ParseUint(args[++i], page_size) || page_size > UINT32_MAX) {
        return Usage("--page-size needs a number");
      }
    } else if (a.starts_with("--")) {
      return Usage("unknown option " + a + " for " + command);
    } else {
      positional.push_back(a);
    }
  }
  if (command != "inspect" && command != "verify" && command != "dump" && command != "build") {
    return Usage("unknown command " + command);
  }
  if (positional.size() != 1) return Usage(command + " takes one FILE");
  const std::string& path = positional[0];
  if (command == "inspect") return Inspect(path);
  if (command == "verify") return Verify(path);
  if (command == "dump") return Dump(path, prefix.value_or(""), hex);
  return Build(path, schema_version, static_cast<std::uint32_t>(page_size));
}
