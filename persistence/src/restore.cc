// Restore with verification and fallback; see restore.h.
//
// Memory: the image (page_count * page_size) is allocated once, after the
// manifest is verified and its size bounded; packs are fetched one at a time
// and released after their pages are copied, so the peak is the image plus
// one pack: pages are verified and copied straight into the arena.
#include "keepstate/persistence/restore.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace keepstate::persistence {
namespace {

std::string Num(std::uint64_t v) { return std::to_string(v); }

Status Prefix(const Status& s, const std::string& prefix) {
  return Status(s.code(), prefix + s.message());
}

}  // namespace

Result<ResolvedManifest> ResolveManifest(RecordStore& store, std::uint64_t version,
                                         const RestoreOptions& options,
                                         std::optional<std::uint64_t> expected_manifest_check) {
  const std::string restoring = "version " + Num(version) + ": ";
  std::vector<Manifest> levels;  // the version's own manifest first, the full one last
  std::vector<ManifestLink> links;
  std::uint64_t want = version;
  std::optional<std::uint64_t> want_check = expected_manifest_check;
  while (true) {
    const std::string key = ManifestKey(want);
    const std::string where = restoring + "manifests/" + key + ": ";
    if (levels.size() == kMaxManifestChain) {
      return Status::Corruption(where + "manifest chain longer than " + Num(kMaxManifestChain));
    }
    Result<std::vector<std::uint8_t>> record = store.Get(RecordKind::kManifest, key);
    if (!record.ok()) {
      if (record.status().IsNotFound()) return Status::Corruption(where + "missing");
      return Prefix(record.status(), where);
    }
    Result<Manifest> decoded = DecodeManifest(*record);
    if (!decoded.ok()) return Prefix(decoded.status(), where);
    Manifest m = std::move(decoded).value();
    if (m.version != want) return Status::Corruption(where + "holds version " + Num(m.version));
    const std::uint64_t check = ManifestRecordChecksum(*record).low;
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
      const Manifest& above = levels.back();
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
    levels.push_back(std::move(m));
    if (full) break;
  }

  // Compose the page table from the full manifest up, with every level's
  // pack indices renumbered into the version's own pack list.
  Manifest& top = levels.front();
  std::vector<std::pair<PackId, std::uint32_t>> own;  // sorted by id
  own.reserve(top.packs.size());
  for (std::uint32_t i = 0; i < top.packs.size(); ++i) own.push_back({top.packs[i].id, i});
  std::sort(own.begin(), own.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  constexpr std::uint32_t kNone = ~std::uint32_t{0};
  std::vector<PageLocation> pages(top.page_count, PageLocation{kNone, 0, {}});
  for (std::size_t l = levels.size(); l-- > 0;) {
    const Manifest& m = levels[l];
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
      loc.pack = renumber[loc.pack];  // DecodeManifest checked the index
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
  Manifest resolved = std::move(top);
  resolved.pages = std::move(pages);
  resolved.changes.clear();
  resolved.delta_base = 0;
  resolved.delta_base_check = 0;
  return ResolvedManifest{std::move(resolved), std::move(links)};
}

Result<RestoredVersion> RestoreVersion(RecordStore& store, std::uint64_t version,
                                       const RestoreOptions& options,
                                       std::optional<std::uint64_t> expected_manifest_check) {
  KEEPSTATE_ASSIGN_OR_RETURN(ResolvedManifest resolved,
                             ResolveManifest(store, version, options, expected_manifest_check));
  Manifest& m = resolved.manifest;

  // Pages grouped by pack (counting sort), so each pack is fetched once.
  std::vector<std::uint32_t> start(m.packs.size() + 1, 0);
  for (const PageLocation& p : m.pages) start[p.pack + 1]++;
  for (std::size_t i = 1; i < start.size(); ++i) start[i] += start[i - 1];
  std::vector<std::uint32_t> order(m.pages.size());
  {
    std::vector<std::uint32_t> fill(start.begin(), start.end() - 1);
    for (std::uint32_t i = 0; i < m.pages.size(); ++i) order[fill[m.pages[i].pack]++] = i;
  }

  // Pages are verified and copied straight into the new arena's buffer.
  Status fill_status;
  auto fill = [&](std::span<std::uint8_t> image) -> Status {
    std::vector<std::uint8_t> pack;  // one buffer, reused for every pack
    for (std::size_t pk = 0; pk < m.packs.size(); ++pk) {
      if (start[pk] == start[pk + 1]) continue;  // listed but unused: not needed to restore
      const PackEntry& entry = m.packs[pk];
      const std::string pack_key = PackKey(entry.id);
      const std::string pack_where = "version " + Num(version) + ": packs/" + pack_key + ": ";
      Status got = store.GetInto(RecordKind::kPack, pack_key, pack);
      if (!got.ok()) {
        if (got.IsNotFound()) return fill_status = Status::Corruption(pack_where + "missing");
        return fill_status = Prefix(got, pack_where);
      }
      if (pack.size() != entry.size) {
        return fill_status = Status::Corruption(pack_where + Num(pack.size()) + " bytes, the manifest says " +
                                  Num(entry.size));
      }
      for (std::uint32_t k = start[pk]; k < start[pk + 1]; ++k) {
        const std::uint32_t page = order[k];
        const PageLocation& loc = m.pages[page];
        // DecodeManifest checked offset + page_size <= entry.size == pack.size().
        std::span<const std::uint8_t> bytes(pack.data() + loc.offset, m.page_size);
#ifndef KEEPSTATE_FUZZ_NO_CHECKSUMS
        if (HashBytes(bytes) != loc.hash) {
          return fill_status = Status::Corruption(pack_where + "page " + Num(page) + " at offset " + Num(loc.offset) +
                                    ": hash mismatch");
        }
#endif
        std::memcpy(image.data() + std::size_t{page} * m.page_size, bytes.data(), m.page_size);
      }
    }
    return Status::Ok();
  };
  Result<engine::Arena> arena = engine::Arena::Restore(
      m.page_size, m.page_count, fill);
  if (!fill_status.ok()) return fill_status;
  if (!arena.ok()) return Prefix(arena.status(), "version " + Num(version) + ": arena: ");
  return RestoredVersion{std::move(arena).value(), std::move(m), std::move(resolved.chain)};
}

Result<Restored> RestoreLatest(RecordStore& store, const RestoreOptions& options) {
  std::vector<VersionFailure> failures;
  std::optional<Head> head;
  bool head_present = false;
  bool head_unreadable = false;
  {
    Result<std::vector<std::uint8_t>> bytes = store.Get(RecordKind::kHead, kHeadKey);
    if (bytes.ok()) {
      head_present = true;
      Result<Head> decoded = DecodeHead(*bytes);
      if (decoded.ok()) {
        head = *decoded;
      } else if (decoded.status().code() == Code::kUnsupported) {
        return decoded.status();
      } else {
        head_unreadable = true;
        failures.push_back({0, decoded.status()});
      }
    } else if (!bytes.status().IsNotFound()) {
      return Prefix(bytes.status(), "head: ");
    }
  }
  KEEPSTATE_ASSIGN_OR_RETURN(std::vector<std::string> keys, store.List(RecordKind::kManifest));
  std::vector<std::uint64_t> versions;
  std::uint64_t newest_seen = head ? head->version : 0;
  for (const std::string& key : keys) {
    Result<std::uint64_t> v = ParseManifestKey(key);
    if (!v.ok()) continue;  // not ours; never restored, never fatal
    newest_seen = std::max(newest_seen, *v);
    if (!head || *v < head->version) versions.push_back(*v);
  }
  if (!head_present && versions.empty()) return Status::NotFound("empty store: no head, no manifest");
  if (!head_present) failures.push_back({0, Status::Corruption("head: missing")});
  std::sort(versions.rbegin(), versions.rend());
  if (head) versions.insert(versions.begin(), head->version);
  if (versions.size() > options.max_versions) versions.resize(options.max_versions);

  for (std::uint64_t v : versions) {
    std::optional<std::uint64_t> check;
    if (head && v == head->version) check = head->manifest_check;
    Result<RestoredVersion> r = RestoreVersion(store, v, options, check);
    if (r.ok()) {
      return Restored{std::move(r->arena), std::move(r->manifest), std::move(r->chain), head,
                      head_unreadable, std::move(failures), newest_seen};
    }
    // Only a version whose bytes fail verification is skipped for an older
    // one. Any other failure (no memory for the state, a storage error, a
    // newer format) says nothing about the data: falling back would restore
    // an older state, or none, whose next commit would overwrite this intact
    // one. So it stops the search and is returned as it is.
    if (r.status().code() != Code::kCorruption) return r.status();
    failures.push_back({v, r.status()});
  }
  std::string message = "no retained version verified:";
  for (const VersionFailure& f : failures) message += " [" + f.status.ToString() + "]";
  return Status::Corruption(message);
}

}  // namespace keepstate::persistence
