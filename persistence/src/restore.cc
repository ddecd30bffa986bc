// Restore with verification and fallback; see restore.h.
//
// Memory: the image (page_count * page_size) is allocated once, after the
// manifest chain is verified and its size bounded; packs arrive one at a
// time (RestoreSession) and are released after their pages are verified and
// copied straight into the new arena, so the peak is the state plus one pack.
#include "keepstate/persistence/restore.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <string>

namespace keepstate::persistence {
namespace {

std::string Num(std::uint64_t v) { return std::to_string(v); }

Status Prefix(const Status& s, const std::string& prefix) {
  return Status(s.code(), prefix + s.message());
}

}  // namespace

std::shared_ptr<const Manifest> ManifestCache::Find(std::uint64_t version, std::uint64_t check) const {
  auto it = entries_.find(version);
  return it != entries_.end() && it->second.check == check ? it->second.manifest : nullptr;
}

void ManifestCache::Add(std::uint64_t version, std::uint64_t check, std::shared_ptr<const Manifest> manifest) {
  entries_[version] = Entry{check, std::move(manifest)};
}

void ManifestCache::KeepOnly(const std::set<std::uint64_t>& keep) {
  std::erase_if(entries_, [&](const auto& e) { return !keep.count(e.first); });
}

Result<ResolvedManifest> ResolveManifest(RecordStore& store, std::uint64_t version,
                                         const RestoreOptions& options,
                                         std::optional<std::uint64_t> expected_manifest_check,
                                         ManifestCache* cache) {
  const std::string restoring = "version " + Num(version) + ": ";
  std::vector<std::shared_ptr<const Manifest>> levels;  // the version's own manifest first, the full one last
  std::vector<ManifestLink> links;
  std::uint64_t want = version;
  std::optional<std::uint64_t> want_check = expected_manifest_check;
  while (true) {
    const std::string key = ManifestKey(want);
    const std::string where = restoring + "manifests/" + key + ": ";
    if (levels.size() == kMaxManifestChain) {
      return Status::Corruption(where + "manifest chain longer than " + Num(kMaxManifestChain));
    }
    std::shared_ptr<const Manifest> found;
    std::uint64_t check = 0;
    if (cache != nullptr && want_check) {
      found = cache->Find(want, *want_check);  // bound by the head or the delta above: no read
      check = *want_check;
    }
    if (found == nullptr) {
      // The store's own bytes where it lends them (a 256 MiB state's full manifest is 1.5 MiB).
      std::vector<std::uint8_t> copy;
      std::optional<std::span<const std::uint8_t>> record = store.View(RecordKind::kManifest, key);
      if (!record) {
        Result<std::vector<std::uint8_t>> got = store.Get(RecordKind::kManifest, key);
        if (!got.ok()) {
          if (got.status().IsNotFound()) return Status::Corruption(where + "missing");
          return Prefix(got.status(), where);
        }
        copy = std::move(got).value();
        record = std::span<const std::uint8_t>(copy);
      }
      // The record's trailer names its checksum: a record decoded before is not decoded again.
      const bool sized = record->size() >= sizeof(ManifestEnvelope) + kManifestTrailerSize;
      if (sized) check = ManifestRecordChecksum(*record).low;
      if (cache != nullptr && sized) found = cache->Find(want, check);
      if (found == nullptr) {
        Result<Manifest> decoded = DecodeManifest(*record);  // checks the size first
        if (!decoded.ok()) return Prefix(decoded.status(), where);
        found = std::make_shared<const Manifest>(std::move(decoded).value());
      }
      if (cache != nullptr) cache->Add(want, check, found);
    }
    const Manifest& m = *found;
    if (m.version != want) return Status::Corruption(where + "holds version " + Num(m.version));
    if (want_check && check != *want_check) {
      return Status::Corruption(where + (levels.empty()
                                             ? "is not the manifest the head was committed with"
                                             : "is not the manifest its delta was written over"));
    }
    if (options.store_id != 0 && m.store_id != options.store_id) {
      return Status::Corruption(where + "belongs to store " + Num(m.store_id) + ", expected " +
                                Num(options.store_id));
    }
    if (options.page_size != 0 && m.page_size != options.page_size) {
      return Status::Corruption(where + "page size " + Num(m.page_size) + ", expected " +
                                Num(options.page_size));
    }
    if (levels.empty()) {
      // Before anything is sized by page_count: a delta's claim is not
      // bounded by its record's size.
      const std::uint64_t state_bytes = std::uint64_t{m.page_count} * m.page_size;
      if (state_bytes > options.max_state_bytes) {
        return Status::OutOfSpace(where + "state of " + Num(state_bytes) + " bytes exceeds the limit of " +
                                  Num(options.max_state_bytes));
      }
    } else {
      const Manifest& above = *levels.back();
      if (m.store_id != above.store_id || m.page_size != above.page_size ||
          m.page_count > above.page_count) {
        return Status::Corruption(where + "does not match the delta over it (store, page size or page count)");
      }
    }
    ManifestLink link{m.version, check, !m.is_delta(), {}};
    link.pages.reserve(m.changes.size());
    for (const ChangedPage& c : m.changes) link.pages.push_back(c.page);
    links.push_back(std::move(link));
    const bool full = !m.is_delta();
    want = m.delta_base;
    want_check = m.delta_base_check;
    levels.push_back(std::move(found));
    if (full) break;
  }

  // Compose the page table from the full manifest up, with every level's
  // pack indices renumbered into the version's own pack list.
  const Manifest& top = *levels.front();
  std::vector<std::pair<PackId, std::uint32_t>> own;  // sorted by id
  own.reserve(top.packs.size());
  for (std::uint32_t i = 0; i < top.packs.size(); ++i) own.push_back({top.packs[i].id, i});
  std::sort(own.begin(), own.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  constexpr std::uint32_t kNone = kBlankPage - 1;  // no manifest has that many packs
  std::vector<PageLocation> pages(top.page_count, PageLocation{kNone, 0, {}});
  for (std::size_t l = levels.size(); l-- > 0;) {
    const Manifest& m = *levels[l];
    std::vector<std::uint32_t> renumber(m.packs.size(), kNone);
    for (std::size_t i = 0; i < m.packs.size(); ++i) {
      auto it = std::lower_bound(own.begin(), own.end(), m.packs[i].id,
                                 [](const auto& a, const PackId& id) { return a.first < id; });
      // The same key with another size is another pack: never mixed up.
      if (it != own.end() && it->first == m.packs[i].id && top.packs[it->second].size == m.packs[i].size) {
        renumber[i] = it->second;
      }
    }
    auto put = [&](std::uint32_t page, PageLocation loc) {
      if (loc.pack != kBlankPage) loc.pack = renumber[loc.pack];  // DecodeManifest checked the index
      pages[page] = loc;
    };
    if (m.is_delta()) {
      for (const ChangedPage& c : m.changes) put(c.page, c.location);
    } else {
      for (std::uint32_t i = 0; i < m.pages.size(); ++i) put(i, m.pages[i]);
    }
  }
  for (std::uint32_t i = 0; i < pages.size(); ++i) {
    if (pages[i].pack == kNone) {
      return Status::Corruption(restoring + "manifests/" + ManifestKey(version) + ": page " + Num(i) +
                                " has no location in a pack this version lists");
    }
  }
  std::reverse(links.begin(), links.end());
  // The version's own fields and packs; its page table is the one composed.
  Manifest resolved;
  resolved.format_version = top.format_version;
  resolved.store_id = top.store_id;
  resolved.version = top.version;
  resolved.base_version = top.base_version;
  resolved.writer_id = top.writer_id;
  resolved.created_unix_ms = top.created_unix_ms;
  resolved.page_size = top.page_size;
  resolved.page_count = top.page_count;
  resolved.packs = top.packs;
  resolved.pages = std::move(pages);
  return ResolvedManifest{std::move(resolved), std::move(links)};
}

// --- RestoreSession ----------------------------------------------------------

struct RestoreSession::State {
  RecordStore* store = nullptr;
  RestoreOptions options;
  const RestoreBase* base = nullptr;
  ManifestCache* cache = nullptr;
  bool single_version = false;  // BeginVersion: no fallback

  // Candidates, newest first, and the head's binding for the first.
  std::vector<std::uint64_t> versions;
  std::size_t next_candidate = 0;
  std::optional<Head> head;
  bool head_unreadable = false;
  std::optional<std::uint64_t> first_check;  // manifest_check for versions[0]
  std::uint64_t newest_seen = 0;
  std::vector<VersionFailure> failures;

  // The candidate being restored.
  std::uint64_t version = 0;
  ResolvedManifest resolved;
  std::optional<engine::Arena::PendingRestore> pending;
  std::vector<std::uint32_t> start;  // pages of pack k: order[start[k], start[k + 1])
  std::vector<std::uint32_t> order;
  std::vector<std::uint32_t> read_pages;  // the pages not taken from the base, ascending
  std::size_t pack = 0;              // the pack needed next

  // The outcome, once there is one.
  std::optional<Restored> restored;
  Status stopped;  // an error that ended the session

  // stage_only: the read pages' bytes, in read_pages order (no image).
  std::vector<std::uint8_t> staged;
  bool staging = false;

  bool active() const { return pending.has_value() || staging; }
  bool StageOnly() const { return base != nullptr && base->stage_only; }

  // Starts the next candidate that resolves, or ends the session.
  void StartNext() {
    pending.reset();
    staging = false;
    while (next_candidate < versions.size()) {
      const bool first = next_candidate == 0;
      version = versions[next_candidate++];
      Result<ResolvedManifest> r =
          ResolveManifest(*store, version, options, first ? first_check : std::nullopt, cache);
      if (!r.ok()) {
        if (!Skip(r.status())) return;
        continue;
      }
      resolved = std::move(r).value();
      const Manifest& m = resolved.manifest;
      if (!StageOnly()) {
        Result<engine::Arena::PendingRestore> p = engine::Arena::BeginRestore(m.page_size, m.page_count);
        if (!p.ok()) {
          if (!Skip(Prefix(p.status(), "version " + Num(version) + ": arena: "))) return;
          continue;
        }
        pending.emplace(std::move(p).value());
      }
      // Pages the base holds are copied now; the others are read, grouped by
      // pack (counting sort) so that each pack is read once.
      std::vector<bool> from_base(m.pages.size(), false);
      if (base != nullptr && StageOnly()) {
        const std::uint32_t n = std::min<std::uint32_t>(m.page_count, base->arena->page_count());
        for (std::uint32_t i = 0; i < n; ++i) from_base[i] = base->holds(i, m.pages[i].hash);
      } else if (base != nullptr) {
        std::span<std::uint8_t> image = pending->image();
        const std::uint32_t n = std::min<std::uint32_t>(m.page_count, base->arena->page_count());
        for (std::uint32_t i = 0; i < n;) {
          if (!base->holds(i, m.pages[i].hash)) {
            ++i;
            continue;
          }
          // A run of pages the base holds, copied at once (few large copies run at memory speed).
          std::uint32_t end = i + 1;
          while (end < n && base->holds(end, m.pages[end].hash)) ++end;
          std::memcpy(image.data() + std::size_t{i} * m.page_size, base->arena->Read(i),
                      std::size_t{end - i} * m.page_size);
          std::fill(from_base.begin() + i, from_base.begin() + end, true);
          i = end;
        }
      }
      start.assign(m.packs.size() + 1, 0);
      read_pages.clear();
      std::size_t blank = 0;
      for (std::uint32_t i = 0; i < m.pages.size(); ++i) {
        if (from_base[i]) continue;
        read_pages.push_back(i);
        if (m.pages[i].pack == kBlankPage) {
          ++blank;
        } else {
          start[m.pages[i].pack + 1]++;
        }
      }
      for (std::size_t i = 1; i < start.size(); ++i) start[i] += start[i - 1];
      order.resize(read_pages.size() - blank);
      std::vector<std::uint32_t> fill(start.begin(), start.end() - 1);
      for (std::uint32_t i : read_pages) {
        if (m.pages[i].pack != kBlankPage) order[fill[m.pages[i].pack]++] = i;
      }
      if (StageOnly()) {
        staged.assign(read_pages.size() * std::size_t{m.page_size}, 0);
        staging = true;
      }
      // Blank pages are in no pack: written now, and verified as a read page is.
      if (Status s = WriteBlankPages(); !s.ok()) {
        if (!Skip(s)) return;
        continue;
      }
      pack = NextUsedPack(0);
      if (pack + 1 >= start.size()) FinishCandidate();  // every page came from the base
      return;
    }
    if (single_version) {
      stopped = failures.empty() ? Status::Corruption("nothing to restore") : failures.back().status;
      return;
    }
    std::string message = "no retained version verified:";
    for (const VersionFailure& f : failures) message += " [" + f.status.ToString() + "]";
    stopped = Status::Corruption(message);
  }

  // Writes the candidate's blank pages (kBlankPage) among read_pages where
  // their bytes go, checking each against its hash.
  Status WriteBlankPages() {
    const Manifest& m = resolved.manifest;
    for (std::size_t k = 0; k < read_pages.size(); ++k) {
      const PageLocation& loc = m.pages[read_pages[k]];
      if (loc.pack != kBlankPage) continue;
      std::uint8_t* dst = StageOnly() ? staged.data() + k * m.page_size
                                      : pending->image().data() + std::size_t{read_pages[k]} * m.page_size;
      FillBlankPage({dst, m.page_size}, loc.offset);
#ifndef KEEPSTATE_FUZZ_NO_CHECKSUMS
      if (HashBytes({dst, m.page_size}) != loc.hash) {
        return Status::Corruption("version " + Num(version) + ": page " + Num(read_pages[k]) +
                                  ": blank page hash mismatch");
      }
#endif
    }
    return Status::Ok();
  }

  // Records a failed candidate. Only a version whose bytes fail verification
  // is skipped for an older one. Any other failure (no memory for the state,
  // a storage error, a newer format) says nothing about the data: falling
  // back would restore an older state, or none, whose next commit would
  // overwrite this intact one. So it stops the session. Returns whether to
  // go on.
  bool Skip(const Status& status) {
    pending.reset();
    staging = false;
    if (status.code() != Code::kCorruption) {
      stopped = status;
      next_candidate = versions.size();
      return false;
    }
    failures.push_back({version, status});
    return true;
  }

  // The first pack at or after k that holds pages of the version (a pack
  // listed but holding none is never read); start.size() - 1 if none.
  std::size_t NextUsedPack(std::size_t k) const {
    while (k + 1 < start.size() && start[k] == start[k + 1]) ++k;
    return k;
  }

  void FinishCandidate() {
    if (StageOnly()) {
      // The caller validates and applies the staged pages; the arena is a placeholder.
      staging = false;
      Result<engine::Arena> placeholder = engine::Arena::Create(resolved.manifest.page_size);
      if (!placeholder.ok()) {
        stopped = placeholder.status();
        next_candidate = versions.size();
        return;
      }
      restored.emplace(Restored{std::move(placeholder).value(), std::move(resolved.manifest), std::move(resolved.chain), head,
                                head_unreadable, std::move(failures), newest_seen, std::move(read_pages), std::move(staged)});
      return;
    }
    Result<engine::Arena> arena = std::move(*pending).Finish();
    pending.reset();
    if (!arena.ok()) {
      if (Skip(Prefix(arena.status(), "version " + Num(version) + ": arena: "))) StartNext();
      return;
    }
    restored.emplace(Restored{std::move(arena).value(), std::move(resolved.manifest),
                              std::move(resolved.chain), head, head_unreadable, std::move(failures),
                              newest_seen, std::move(read_pages), {}});
  }
};

RestoreSession::RestoreSession(std::unique_ptr<State> state) : state_(std::move(state)) {}
RestoreSession::~RestoreSession() = default;
RestoreSession::RestoreSession(RestoreSession&&) noexcept = default;
RestoreSession& RestoreSession::operator=(RestoreSession&&) noexcept = default;

Result<RestoreSession> RestoreSession::Begin(RecordStore& store, const RestoreOptions& options,
                                             const RestoreBase* base, ManifestCache* cache) {
  auto st = std::make_unique<State>();
  st->store = &store;
  st->options = options;
  st->base = base;
  st->cache = cache;
  bool head_present = false;
  {
    Result<std::vector<std::uint8_t>> bytes = store.Get(RecordKind::kHead, kHeadKey);
    if (bytes.ok()) {
      head_present = true;
      Result<Head> decoded = DecodeHead(*bytes);
      if (decoded.ok()) {
        st->head = *decoded;
      } else if (decoded.status().code() == Code::kUnsupported) {
        return decoded.status();
      } else {
        st->head_unreadable = true;
        st->failures.push_back({0, decoded.status()});
      }
    } else if (!bytes.status().IsNotFound()) {
      return Prefix(bytes.status(), "head: ");
    }
  }
  KEEPSTATE_ASSIGN_OR_RETURN(std::vector<std::string> keys, store.List(RecordKind::kManifest));
  std::vector<std::uint64_t> versions;
  st->newest_seen = st->head ? st->head->version : 0;
  for (const std::string& key : keys) {
    Result<std::uint64_t> v = ParseManifestKey(key);
    if (!v.ok()) continue;  // not ours; never restored, never fatal
    st->newest_seen = std::max(st->newest_seen, *v);
    if (!st->head || *v < st->head->version) versions.push_back(*v);
  }
  if (!head_present && versions.empty()) return Status::NotFound("empty store: no head, no manifest");
  if (!head_present) st->failures.push_back({0, Status::Corruption("head: missing")});
  std::sort(versions.rbegin(), versions.rend());
  if (st->head) {
    versions.insert(versions.begin(), st->head->version);
    st->first_check = st->head->manifest_check;
  }
  if (versions.size() > options.max_versions) versions.resize(options.max_versions);
  st->versions = std::move(versions);
  st->StartNext();
  return RestoreSession(std::move(st));
}

Result<RestoreSession> RestoreSession::BeginVersion(RecordStore& store, std::uint64_t version,
                                                    const RestoreOptions& options,
                                                    std::optional<std::uint64_t> expected_manifest_check) {
  auto st = std::make_unique<State>();
  st->store = &store;
  st->options = options;
  st->single_version = true;
  st->versions = {version};
  st->first_check = expected_manifest_check;
  st->newest_seen = version;
  st->StartNext();
  return RestoreSession(std::move(st));
}

std::optional<PackId> RestoreSession::needed() const {
  const State& st = *state_;
  if (!st.active()) return std::nullopt;
  return st.resolved.manifest.packs[st.pack].id;
}

std::optional<PackId> RestoreSession::needed_after() const {
  const State& st = *state_;
  if (!st.active()) return std::nullopt;
  const std::size_t k = st.NextUsedPack(st.pack + 1);
  if (k + 1 >= st.start.size()) return std::nullopt;
  return st.resolved.manifest.packs[k].id;
}

std::vector<PackId> RestoreSession::needed_ahead(std::size_t max) const {
  const State& st = *state_;
  std::vector<PackId> ahead;
  if (!st.active()) return ahead;
  for (std::size_t k = st.NextUsedPack(st.pack + 1); ahead.size() < max && k + 1 < st.start.size();
       k = st.NextUsedPack(k + 1)) {
    ahead.push_back(st.resolved.manifest.packs[k].id);
  }
  return ahead;
}

std::uint64_t RestoreSession::needed_bytes() const {
  const State& st = *state_;
  std::uint64_t bytes = 0;
  if (!st.active()) return bytes;
  for (std::size_t k = st.pack; k + 1 < st.start.size(); k = st.NextUsedPack(k + 1)) {
    bytes += st.resolved.manifest.packs[k].size;
  }
  return bytes;
}

Status RestoreSession::Add(std::optional<std::span<const std::uint8_t>> bytes) {
  State& st = *state_;
  if (!st.active()) return Status::Internal("RestoreSession::Add without a needed pack");
  const Manifest& m = st.resolved.manifest;
  const PackEntry& entry = m.packs[st.pack];
  const std::string where = "version " + Num(st.version) + ": packs/" + PackKey(entry.id) + ": ";
  auto corrupt = [&](const std::string& what) {
    if (st.Skip(Status::Corruption(where + what))) st.StartNext();
    return st.stopped;
  };
  if (!bytes) return corrupt("missing");
  if (bytes->size() != entry.size) {
    return corrupt(Num(bytes->size()) + " bytes, the manifest says " + Num(entry.size));
  }
  std::uint8_t* const out = st.staging ? st.staged.data() : st.pending->image().data();
  for (std::uint32_t k = st.start[st.pack]; k < st.start[st.pack + 1]; ++k) {
    const std::uint32_t page = st.order[k];
    const PageLocation& loc = m.pages[page];
    // DecodeManifest checked offset + page_size <= entry.size == bytes->size().
    // Copied first, then hashed where it landed (still in L1): the pack is
    // read once. A mismatch discards the whole image with the candidate.
    // Staged pages lie in read_pages order (ascending); the image holds every page at its place.
    const std::size_t slot = st.staging ? static_cast<std::size_t>(std::lower_bound(st.read_pages.begin(), st.read_pages.end(), page) -
                                                                   st.read_pages.begin())
                                        : page;
    std::uint8_t* dst = out + slot * m.page_size;
    std::memcpy(dst, bytes->data() + loc.offset, m.page_size);
#ifndef KEEPSTATE_FUZZ_NO_CHECKSUMS
    if (HashBytes({dst, m.page_size}) != loc.hash) {
      return corrupt("page " + Num(page) + " at offset " + Num(loc.offset) + ": hash mismatch");
    }
#endif
  }
  st.pack = st.NextUsedPack(st.pack + 1);
  if (st.pack + 1 >= st.start.size()) st.FinishCandidate();
  return st.stopped;
}

void RestoreSession::Fail(const Status& read_error) {
  State& st = *state_;
  if (!st.active()) return;
  const std::string where =
      "version " + Num(st.version) + ": packs/" + PackKey(st.resolved.manifest.packs[st.pack].id) + ": ";
  st.pending.reset();
  st.staging = false;
  st.stopped = Prefix(read_error, where);
  st.next_candidate = st.versions.size();
}

const std::vector<VersionFailure>& RestoreSession::failures() const { return state_->failures; }

Result<Restored> RestoreSession::Finish() && {
  State& st = *state_;
  if (st.restored) return std::move(*st.restored);
  if (!st.stopped.ok()) return st.stopped;
  return Status::Internal("RestoreSession::Finish before the restore finished");
}

namespace {

// Drives a session from a synchronous store: packs lent by View, or read
// into one reused buffer.
Result<Restored> RunSession(RecordStore& store, RestoreSession session) {
  std::vector<std::uint8_t> pack;
  while (std::optional<PackId> id = session.needed()) {
    const std::string key = PackKey(*id);
    if (std::optional<std::span<const std::uint8_t>> view = store.View(RecordKind::kPack, key)) {
      session.Add(*view).IgnoreError();  // no copy: the store lends its bytes
      continue;
    }
    Status got = store.GetInto(RecordKind::kPack, key, pack);
    if (got.ok()) {
      session.Add(std::span<const std::uint8_t>(pack)).IgnoreError();  // Finish reports it
    } else if (got.IsNotFound()) {
      session.Add(std::nullopt).IgnoreError();
    } else {
      session.Fail(got);
    }
  }
  return std::move(session).Finish();
}

}  // namespace

Result<RestoredVersion> RestoreVersion(RecordStore& store, std::uint64_t version,
                                       const RestoreOptions& options,
                                       std::optional<std::uint64_t> expected_manifest_check) {
  KEEPSTATE_ASSIGN_OR_RETURN(RestoreSession session,
                             RestoreSession::BeginVersion(store, version, options, expected_manifest_check));
  KEEPSTATE_ASSIGN_OR_RETURN(Restored r, RunSession(store, std::move(session)));
  return RestoredVersion{std::move(r.arena), std::move(r.manifest), std::move(r.chain)};
}

Result<Restored> RestoreLatest(RecordStore& store, const RestoreOptions& options) {
  KEEPSTATE_ASSIGN_OR_RETURN(RestoreSession session, RestoreSession::Begin(store, options));
  return RunSession(store, std::move(session));
}

}  // namespace keepstate::persistence
