// Small helpers shared by the C++ benchmarks: a clock, a table printer and a
// JSON writer, so every benchmark prints and records results the same way.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace keepstate::bench {

inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

#if defined(__EMSCRIPTEN__)
inline constexpr const char* kPlatform = "wasm (em++ 3.1.6, Node)";
#else
inline constexpr const char* kPlatform = "native (g++)";
#endif

struct Row {
  std::string name;
  double value;
  std::string unit;
  std::string note;  // e.g. "ratio 3.4x vs std::map (target >= 3x): PASS"
};

class Report {
 public:
  explicit Report(std::string title) : title_(std::move(title)) {}
  void Add(std::string name, double value, std::string unit, std::string note = "") {
    rows_.push_back({std::move(name), value, std::move(unit), std::move(note)});
  }
  void Print() const {
    std::printf("\n%s — %s\n", title_.c_str(), kPlatform);
    std::printf("%-52s %16s  %-8s %s\n", "measure", "value", "unit", "note");
    for (const Row& r : rows_) {
      std::printf("%-52s %16.3f  %-8s %s\n", r.name.c_str(), r.value, r.unit.c_str(), r.note.c_str());
    }
    std::fflush(stdout);
  }
  bool WriteJson(const std::string& path) const {
    if (path.empty()) return true;
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return false;
    std::fprintf(f, "{\"title\": \"%s\", \"platform\": \"%s\", \"rows\": [\n", title_.c_str(), kPlatform);
    for (std::size_t i = 0; i < rows_.size(); ++i) {
      const Row& r = rows_[i];
      std::fprintf(f, "  {\"name\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", \"note\": \"%s\"}%s\n",
                   r.name.c_str(), r.value, r.unit.c_str(), r.note.c_str(),
                   i + 1 < rows_.size() ? "," : "");
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
    return true;
  }

 private:
  std::string title_;
  std::vector<Row> rows_;
};

// "--json <path>" from argv, or "".
inline std::string JsonPath(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--json") return argv[i + 1];
  }
  return "";
}

inline bool HasFlag(int argc, char** argv, const char* flag) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == flag) return true;
  }
  return false;
}

inline std::string Verdict(double ratio, double target) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.2fx (target >= %.1fx): %s", ratio, target,
                ratio >= target ? "PASS" : "MISS");
  return buf;
}

}  // namespace keepstate::bench
