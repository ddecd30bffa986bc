// Persister: capture, pack, compact, retain; see persister.h and
// docs/snapshot-format.md.
//
// State between commits (internal::PersisterState):
//  - pages[i]: where the committed copy of page i lives, as (slot, offset,
//    hash); a slot is this process's handle for a pack the current version
//    reads from, with the live bytes it still holds for that version.
//  - retained: the versions kept restorable (newest first) and the packs each
//    reads from, to know which packs no retained version needs any more.
// Invariant: slots[s].live_bytes == page_size * |{i : pages[i].pack == s}|,
// and a slot with live_bytes == 0 is free (its pack may still be stored for
// an older retained version).
#include "keepstate/persistence/persister.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <set>
#include <string>

#include "manifest_encoder.h"

namespace keepstate::persistence {
namespace internal {

struct Slot {
  PackId id;
  std::uint32_t size = 0;
  std::uint64_t live_bytes = 0;
};

struct RetainedVersion {
  std::uint64_t version = 0;
  std::vector<PackId> packs;             // sorted
  std::vector<std::uint64_t> manifests;  // its manifest chain's versions
};

struct PersisterState {
  std::uint64_t version = 0;  // newest version number used; the next is version + 1
  std::uint64_t head = 0;     // stored head version the next commit expects (or kUnreadableHead)
  // The exact stored head record the next commit expects (nullopt: none), and
  // whether it clears the store first (a fresh line): see WriteBatch.
  std::optional<std::vector<std::uint8_t>> head_record;
  bool clear_first = false;
  std::vector<PageLocation> pages;  // .pack is a slot index
  std::vector<Slot> slots;
  std::deque<RetainedVersion> retained;  // newest first
  std::vector<RecordKey> orphans;        // stored, unreferenced; deleted by the next commit
  // The committed version's manifest chain, full manifest first, its own
  // last (empty before the first commit). Invariant (writer's policy, see
  // ChooseManifestShape): the deltas' page counts more than halve from one
  // link to the next, so the chain is at most ~log2(page count) + 2 long.
  std::vector<ManifestLink> chain;

  // Only in a plan's pending state, whose `pages` stays empty: the committed
  // page map is updated in place on success rather than copied per commit,
  // so a commit does not copy O(page count) state.
  std::uint32_t page_count = 0;
  std::vector<engine::PageId> updated_pages;  // ascending
  std::vector<PageLocation> updated_locations;
  // The committed chain becomes chain[0, chain_keep) + new_link.
  std::size_t chain_keep = 0;
  ManifestLink new_link;
};

}  // namespace internal

using internal::PersisterState;
using internal::RetainedVersion;
using internal::Slot;

namespace {

std::string Num(std::uint64_t v) { return std::to_string(v); }

// Chooses the slots whose live pages this commit rewrites (see
// PersisterOptions), given the state after the dirty pages left their packs.
std::vector<bool> ChooseCompaction(const PersisterState& s, const PersisterOptions& o,
                                   std::uint64_t new_bytes, std::uint64_t live_total) {
  std::vector<bool> chosen(s.slots.size(), false);
  std::uint64_t stored = new_bytes;
  std::size_t packs = 0;
  std::vector<std::uint32_t> candidates;
  for (std::uint32_t i = 0; i < s.slots.size(); ++i) {
    if (s.slots[i].live_bytes == 0) continue;
    stored += s.slots[i].size;
    ++packs;
    candidates.push_back(i);
  }
  auto new_packs = [&](std::uint64_t bytes) {
    return static_cast<std::size_t>((bytes + o.max_pack_bytes - 1) / o.max_pack_bytes);
  };
  auto dead = [&] { return static_cast<double>(stored - live_total); };
  // A state too large for max_packs / 2 full packs may use twice as many as
  // it needs, and merges down to one and a half times as many: else every
  // commit would merge packs that are full already, rewriting most of the
  // state (a 2 GiB state needs 256 packs of 8 MiB).
  const std::size_t max_packs = std::max<std::size_t>(o.max_packs, 2 * new_packs(live_total));
  const std::size_t merged_packs = std::max<std::size_t>(o.max_packs / 2, new_packs(live_total) * 3 / 2);
  const bool too_dead = dead() > o.compact_dead_fraction * static_cast<double>(stored);
  const bool too_many = packs + new_packs(new_bytes) > max_packs;
  if (!too_dead && !too_many) return chosen;

  auto choose = [&](std::uint32_t slot) {
    const Slot& sl = s.slots[slot];
    chosen[slot] = true;
    stored -= sl.size - sl.live_bytes;  // its live bytes move into the new packs
    new_bytes += sl.live_bytes;
    --packs;
  };
  if (too_dead) {
    // Sparsest first: the most dead bytes freed per live byte rewritten.
    std::sort(candidates.begin(), candidates.end(), [&](std::uint32_t a, std::uint32_t b) {
      return s.slots[a].live_bytes * s.slots[b].size < s.slots[b].live_bytes * s.slots[a].size;
    });
    for (std::uint32_t c : candidates) {
      if (dead() <= o.compact_target_fraction * static_cast<double>(stored)) break;
      choose(c);
    }
  }
  if (packs + new_packs(new_bytes) > max_packs) {
    // Smallest first: fewest bytes rewritten per record removed.
    std::sort(candidates.begin(), candidates.end(), [&](std::uint32_t a, std::uint32_t b) {
      return s.slots[a].live_bytes < s.slots[b].live_bytes;
    });
    for (std::uint32_t c : candidates) {
      if (packs + new_packs(new_bytes) <= merged_packs) break;
      if (!chosen[c]) choose(c);
    }
  }
  return chosen;
}

// The writer's policy for the shape of a commit's manifest (an LSM-style
// size-tiered merge): the new manifest is a delta over the newest link of
// the committed chain that lists more than twice as many pages as the delta
// would; the links above that one are merged into the delta. It is full
// instead when there is no chain yet, when the delta would list half the
// pages or more (then a full table costs at most twice as much), or when the
// chain is at its cap. Each page entry is so rewritten at most ~log2(page
// count) times before a full manifest absorbs it: a commit writes O(changed
// pages x log) manifest bytes amortized, not O(page count).
struct ManifestShape {
  bool full = true;
  std::size_t keep = 0;  // links of the committed chain kept below the new one
  std::vector<engine::PageId> pages;  // a delta's pages: this commit's and the merged links'
};
constexpr std::size_t kMaxWrittenChain = 32;  // well below kMaxManifestChain

ManifestShape ChooseManifestShape(const std::vector<ManifestLink>& chain,
                                  const std::vector<engine::PageId>& changed, std::uint32_t page_count) {
  ManifestShape shape;
  shape.pages = changed;
  std::size_t keep = chain.size();
  while (keep > 1 && chain[keep - 1].pages.size() <= 2 * shape.pages.size()) {
    const std::vector<std::uint32_t>& more = chain[keep - 1].pages;
    std::vector<engine::PageId> merged;
    merged.reserve(shape.pages.size() + more.size());
    std::set_union(shape.pages.begin(), shape.pages.end(), more.begin(), more.end(),
                   std::back_inserter(merged));
    shape.pages = std::move(merged);
    --keep;
  }
  shape.full = chain.empty() || 2 * std::uint64_t{shape.pages.size()} >= page_count ||
               keep >= kMaxWrittenChain;
  shape.keep = shape.full ? 0 : keep;
  if (shape.full) shape.pages.clear();
  return shape;
}

// The versions of a chain's first n links (all of them by default): the
// manifests a version needs stored to restore.
std::vector<std::uint64_t> ChainVersions(const std::vector<ManifestLink>& chain,
                                         std::size_t n = ~std::size_t{0}) {
  std::vector<std::uint64_t> v;
  for (std::size_t i = 0; i < chain.size() && i < n; ++i) v.push_back(chain[i].version);
  return v;
}

std::vector<PackId> SortedPackIds(const Manifest& m) {
  std::vector<PackId> ids;
  ids.reserve(m.packs.size());
  for (const PackEntry& p : m.packs) ids.push_back(p.id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

Status ValidateOptions(const PersisterOptions& o) {
  if (o.page_size < engine::kMinPageSize || o.page_size > engine::kMaxPageSize ||
      !std::has_single_bit(o.page_size)) {
    return Status::InvalidArgument("bad page size " + Num(o.page_size));
  }
  if (o.max_pack_bytes < o.page_size || o.max_pack_bytes > kMaxPackBytes) {
    return Status::InvalidArgument("max_pack_bytes must lie in [page_size, 64 MiB]");
  }
  if (o.retain_versions < 1) return Status::InvalidArgument("retain_versions must be >= 1");
  if (o.max_packs < 2) return Status::InvalidArgument("max_packs must be >= 2");
  return Status::Ok();
}

// ---- Capture's steps --------------------------------------------------------
//
// Capture runs them in this order; each step's comment says what it hands to
// the next. Every error is returned before the arena's dirty bits or the
// committed state change.

// The dirty pages below the arena's page count, ascending: the pages this
// commit must write. Internal if a page with no stored copy is not dirty (a
// write bypassed dirty tracking). The arena may have shrunk (pages returned
// at its end): the pages above its count leave the state.
Result<std::vector<engine::PageId>> CollectDirtyPages(const engine::Arena& arena, std::uint32_t old_count) {
  const std::uint32_t page_count = arena.page_count();
  std::vector<engine::PageId> dirty = arena.DirtyPages();
  while (!dirty.empty() && dirty.back() >= page_count) dirty.pop_back();
  for (std::uint32_t id = old_count; id < page_count; ++id) {
    // Invariant: a page with no stored copy is dirty (Allocate writes it).
    if (!arena.dirty().Test(id)) {
      return Status::Internal("page " + Num(id) + " has no stored copy and is not dirty");
    }
  }
  return dirty;
}

// The plan's pending state: the committed one's slots and retention, with
// the dirty pages taken out of the packs that held them (*in_commit marks
// them).
std::unique_ptr<PersisterState> StartPendingState(const PersisterState& cur, std::uint32_t page_count,
                                                  std::uint32_t ps, const std::vector<engine::PageId>& dirty,
                                                  std::vector<bool>* in_commit) {
  const std::uint32_t old_count = static_cast<std::uint32_t>(cur.pages.size());
  auto next = std::make_unique<PersisterState>();
  next->version = cur.version;
  next->head = cur.head;
  next->slots = cur.slots;
  next->retained = cur.retained;
  next->orphans = cur.orphans;
  next->page_count = page_count;
  in_commit->assign(page_count, false);
  auto leave_pack = [&](engine::PageId id) {
    if (cur.pages[id].pack != kBlankPage) next->slots[cur.pages[id].pack].live_bytes -= ps;
  };
  for (engine::PageId id : dirty) {
    (*in_commit)[id] = true;
    if (id < old_count) leave_pack(id);
  }
  for (engine::PageId id = page_count; id < old_count; ++id) leave_pack(id);  // returned by a shrink
  return next;
}

// Compaction: the live (clean) pages of the packs ChooseCompaction picks,
// ascending, taken out of those packs in *next and marked in *in_commit. They
// are rewritten from the arena; clean pages equal their committed bytes,
// which StagePages verifies.
std::vector<engine::PageId> ChooseMovedPages(const PersisterState& cur, const PersisterOptions& o,
                                             std::size_t dirty_count, PersisterState* next,
                                             std::vector<bool>* in_commit) {
  const std::uint32_t ps = o.page_size;
  const std::uint32_t old_count = static_cast<std::uint32_t>(cur.pages.size());
  // The bytes the new version stores (blank pages take none).
  std::uint64_t live_total = std::uint64_t{dirty_count} * ps;
  for (const Slot& slot : next->slots) live_total += slot.live_bytes;
  std::vector<bool> chosen = ChooseCompaction(*next, o, std::uint64_t{dirty_count} * ps, live_total);
  std::vector<engine::PageId> moved;
  if (std::find(chosen.begin(), chosen.end(), true) != chosen.end()) {
    for (std::uint32_t id = 0; id < std::min(old_count, next->page_count); ++id) {
      const std::uint32_t pack = cur.pages[id].pack;
      if (!(*in_commit)[id] && pack != kBlankPage && chosen[pack]) {
        moved.push_back(id);
        (*in_commit)[id] = true;
        next->slots[cur.pages[id].pack].live_bytes -= ps;
      }
    }
  }
  return moved;
}

// How a commit's pages are cut into packs: `count` packs of `per_pack` pages
// (the last may hold fewer), equal page counts, none above max_pack_bytes.
struct PackCut {
  std::size_t count = 0;
  std::size_t per_pack = 0;

  std::size_t first(std::size_t pk) const { return pk * per_pack; }
  std::size_t last(std::size_t pk, std::size_t pages) const { return std::min(pages, first(pk) + per_pack); }
};

PackCut CutIntoPacks(std::size_t pages, const PersisterOptions& o) {
  const std::size_t per_pack_max = o.max_pack_bytes / o.page_size;
  PackCut cut;
  cut.count = (pages + per_pack_max - 1) / per_pack_max;
  cut.per_pack = cut.count ? (pages + cut.count - 1) / cut.count : 0;
  return cut;
}

// Gives each of the commit's packs a slot in *next, reusing free ones (the
// lowest index first), and returns the slot index of each pack.
std::vector<std::uint32_t> AssignPackSlots(const PackCut& cut, std::size_t pages, std::uint64_t version,
                                           const PersisterOptions& o, PersisterState* next) {
  const std::uint32_t ps = o.page_size;
  std::vector<std::uint32_t> free_slots;
  for (std::uint32_t i = 0; i < next->slots.size(); ++i) {
    if (next->slots[i].live_bytes == 0) free_slots.push_back(i);
  }
  std::reverse(free_slots.begin(), free_slots.end());
  std::vector<std::uint32_t> pack_slots(cut.count);
  for (std::size_t pk = 0; pk < cut.count; ++pk) {
    const std::size_t first = cut.first(pk);
    const std::size_t last = cut.last(pk, pages);
    Slot slot{{version, o.writer_id, static_cast<std::uint32_t>(pk)},
              static_cast<std::uint32_t>((last - first) * ps),
              (last - first) * std::uint64_t{ps}};
    std::uint32_t slot_index;
    if (!free_slots.empty()) {
      slot_index = free_slots.back();
      free_slots.pop_back();
      next->slots[slot_index] = slot;
    } else {
      slot_index = static_cast<std::uint32_t>(next->slots.size());
      next->slots.push_back(slot);
    }
    pack_slots[pk] = slot_index;
  }
  return pack_slots;
}

// How many of `pages` are not blank (IsBlankPage): the pages the commit
// stores in packs.
std::size_t CountStoredPages(const engine::Arena& arena, const std::vector<engine::PageId>& pages) {
  std::size_t n = 0;
  std::uint32_t word;
  for (engine::PageId id : pages) n += IsBlankPage({arena.Read(id), arena.page_size()}, &word) ? 0 : 1;
  return n;
}

// Copies the pages of `pages` that are not blank from the arena into
// `staging`, back to back, hashes each page, and records where it now lives
// (a blank page: in its manifest entry alone) in next->updated_pages/_locations.
// Internal if a moved (clean) page's bytes differ from its committed hash.
Status StagePages(const engine::Arena& arena, const PersisterState& cur, const std::vector<engine::PageId>& pages,
                  const std::vector<engine::PageId>& moved, const PackCut& cut,
                  const std::vector<std::uint32_t>& pack_slots, std::uint32_t ps, std::uint8_t* staging,
                  PersisterState* next) {
  std::size_t moved_i = 0;
  std::size_t staged = 0;  // pages copied into staging so far
  next->updated_pages = pages;
  next->updated_locations.resize(pages.size());
  for (std::size_t k = 0; k < pages.size(); ++k) {
    const engine::PageId id = pages[k];
    PageLocation& loc = next->updated_locations[k];
    std::uint32_t word;
    if (IsBlankPage({arena.Read(id), ps}, &word)) {
      loc = {kBlankPage, word, HashBytes({arena.Read(id), ps})};
    } else {
      const std::size_t pk = staged / cut.per_pack;
      std::uint8_t* out = staging + staged * ps;
      std::memcpy(out, arena.Read(id), ps);
      loc = {pack_slots[pk], static_cast<std::uint32_t>((staged - cut.first(pk)) * ps), HashBytes({out, ps})};
      ++staged;
    }
    if (moved_i < moved.size() && moved[moved_i] == id) {
      ++moved_i;
      if (loc.hash != cur.pages[id].hash) {
        return Status::Internal("page " + Num(id) +
                                " changed without being marked dirty (a write bypassed Arena::Write)");
      }
    }
  }
  return Status::Ok();
}

// A commit's manifest: its fields and pack table, the encoded record, and
// the shape ChooseManifestShape picked for its page table.
struct CommitManifest {
  Manifest manifest;  // the page table is not kept here when shape.full
  std::vector<std::uint8_t> record;
  ManifestShape shape;
};

// The manifest of version `version`: every slot of `next` still holding live
// pages, in slot order, and the page table, full or a delta.
CommitManifest BuildManifest(const PersisterState& cur, const PersisterState& next,
                             const std::vector<engine::PageId>& pages, const PersisterOptions& o,
                             std::uint64_t version, std::uint64_t base, std::uint64_t now_unix_ms) {
  CommitManifest result;
  Manifest& m = result.manifest;
  m.store_id = o.store_id;
  m.version = version;
  m.base_version = base;
  m.writer_id = o.writer_id;
  m.created_unix_ms = now_unix_ms;
  m.page_size = o.page_size;
  m.page_count = next.page_count;
  std::vector<std::uint32_t> table_index(next.slots.size(), 0);
  for (std::uint32_t i = 0; i < next.slots.size(); ++i) {
    if (next.slots[i].live_bytes == 0) continue;
    table_index[i] = static_cast<std::uint32_t>(m.packs.size());
    m.packs.push_back({next.slots[i].id, next.slots[i].size});
  }
  // A delta lists pages whose location changed, so it cannot drop pages:
  // a state that shrank gets a full manifest.
  const bool shrank = next.page_count < cur.pages.size();
  result.shape = ChooseManifestShape(shrank ? std::vector<ManifestLink>{} : cur.chain, pages, next.page_count);
  const ManifestShape& shape = result.shape;
  if (shape.full) {
    // The page table is written straight into the manifest's FlatBuffer: the
    // committed map merged with this commit's pages, slots renumbered.
    struct FillContext {
      const std::vector<PageLocation>* committed;
      const std::vector<engine::PageId>* updated_pages;
      const std::vector<PageLocation>* updated_locations;
      const std::vector<std::uint32_t>* table_index;
    } fill_context{&cur.pages, &next.updated_pages, &next.updated_locations, &table_index};
    result.record = internal::EncodeManifestWith(
        m, next.page_count,
        [](void* context, std::span<PageLocation> out) {
          const FillContext& c = *static_cast<const FillContext*>(context);
          // Raw pointers in locals: the byte-wise stores below may alias
          // anything, which would otherwise reload every vector per page.
          const PageLocation* committed = c.committed->data();
          const engine::PageId* updated_pages = c.updated_pages->data();
          const PageLocation* updated_locations = c.updated_locations->data();
          const std::uint32_t* table_index = c.table_index->data();
          const std::size_t updates = c.updated_pages->size();
          std::uint8_t* dst = reinterpret_cast<std::uint8_t*>(out.data());
          for (std::size_t i = 0, k = 0; i < out.size(); ++i, dst += sizeof(PageLocation)) {
            const bool updated = k < updates && updated_pages[k] == i;
            PageLocation loc = updated ? updated_locations[k++] : committed[i];
            if (loc.pack != kBlankPage) loc.pack = table_index[loc.pack];
            std::memcpy(dst, &loc, sizeof loc);
          }
        },
        &fill_context);
  } else {
    // A delta over link keep - 1: this commit's pages and those of the links
    // merged into it, each where it now lives.
    const ManifestLink& base_link = cur.chain[shape.keep - 1];
    m.delta_base = base_link.version;
    m.delta_base_check = base_link.check;
    m.changes.reserve(shape.pages.size());
    std::size_t k = 0;
    for (engine::PageId id : shape.pages) {
      while (k < pages.size() && pages[k] < id) ++k;
      PageLocation loc = k < pages.size() && pages[k] == id ? next.updated_locations[k] : cur.pages[id];
      if (loc.pack != kBlankPage) loc.pack = table_index[loc.pack];
      m.changes.push_back({id, loc});
    }
    result.record = EncodeManifest(m);
  }
  return result;
}

// Retention: the new version (its packs, and every manifest of its chain:
// the committed chain's first `chain_keep` links and its own) joins
// next->retained, which then keeps the newest retain_versions. Returns the
// versions that fell out.
std::vector<RetainedVersion> RetainNewVersion(const PersisterState& cur, std::size_t chain_keep,
                                              const Manifest& m, std::uint32_t retain_versions,
                                              PersisterState* next) {
  std::vector<std::uint64_t> chain_versions = ChainVersions(cur.chain, chain_keep);
  chain_versions.push_back(m.version);
  next->retained.push_front({m.version, SortedPackIds(m), std::move(chain_versions)});
  std::vector<RetainedVersion> dropped;
  while (next->retained.size() > retain_versions) {
    dropped.push_back(std::move(next->retained.back()));
    next->retained.pop_back();
  }
  return dropped;
}

// The records the commit deletes, sorted: the manifests and packs of the
// dropped versions that no retained version needs, and every orphan (taken
// out of next->orphans).
std::vector<RecordKey> ComputeDeletes(const std::vector<RetainedVersion>& dropped, PersisterState* next) {
  std::set<PackId> keep;
  std::set<std::uint64_t> keep_manifests;
  for (const RetainedVersion& r : next->retained) {
    keep.insert(r.packs.begin(), r.packs.end());
    keep_manifests.insert(r.manifests.begin(), r.manifests.end());
  }
  std::set<RecordKey> deletes;
  for (const RetainedVersion& d : dropped) {
    for (std::uint64_t v : d.manifests) {
      if (!keep_manifests.count(v)) deletes.insert({RecordKind::kManifest, ManifestKey(v)});
    }
    for (const PackId& p : d.packs) {
      if (!keep.count(p)) deletes.insert({RecordKind::kPack, PackKey(p)});
    }
  }
  for (RecordKey& k : next->orphans) deletes.insert(std::move(k));
  next->orphans.clear();
  return std::vector<RecordKey>(deletes.begin(), deletes.end());
}

// The commit's puts, in the order Apply writes them: packs (views into
// `staging`), then the manifest, then the head.
std::vector<Record> CommitRecords(const PackCut& cut, std::size_t pages, std::uint64_t version,
                                  const PersisterOptions& o, const std::uint8_t* staging,
                                  std::span<const std::uint8_t> manifest, std::span<const std::uint8_t> head) {
  const std::uint32_t ps = o.page_size;
  std::vector<Record> puts;
  for (std::size_t pk = 0; pk < cut.count; ++pk) {
    const std::size_t first = cut.first(pk);
    const std::size_t last = cut.last(pk, pages);
    puts.push_back({RecordKind::kPack, PackKey({version, o.writer_id, static_cast<std::uint32_t>(pk)}),
                    {staging + first * ps, (last - first) * ps}});
  }
  puts.push_back({RecordKind::kManifest, ManifestKey(version), manifest});
  puts.push_back({RecordKind::kHead, std::string(kHeadKey), head});
  return puts;
}

}  // namespace

// --- CommitPlan --------------------------------------------------------------

CommitPlan::CommitPlan() = default;
CommitPlan::~CommitPlan() = default;
CommitPlan::CommitPlan(CommitPlan&&) noexcept = default;
CommitPlan& CommitPlan::operator=(CommitPlan&&) noexcept = default;

// --- Persister ---------------------------------------------------------------

Persister::Persister(PersisterOptions options)
    : state_(std::make_unique<PersisterState>()), options_(options) {}
Persister::~Persister() = default;
Persister::Persister(Persister&&) noexcept = default;
Persister& Persister::operator=(Persister&&) noexcept = default;

bool Persister::Holds(const engine::Arena& arena, engine::PageId page, const Hash128& hash) const {
  // Between commits a clean page equals its committed bytes (the invariant Capture checks).
  return !in_flight_ && page < state_->pages.size() && page < arena.page_count() && !arena.dirty().Test(page) &&
         state_->pages[page].hash == hash;
}

std::set<std::uint64_t> Persister::RetainedVersions() const {
  std::set<std::uint64_t> out;
  for (const RetainedVersion& rv : state_->retained) out.insert(rv.version);
  return out;
}

std::set<std::uint64_t> Persister::RetainedManifests() const {
  std::set<std::uint64_t> out;
  for (const RetainedVersion& rv : state_->retained) out.insert(rv.manifests.begin(), rv.manifests.end());
  return out;
}

std::uint64_t Persister::version() const { return state_->version; }
std::uint64_t Persister::head_version() const { return state_->head; }

std::uint64_t Persister::current_pack_bytes() const {
  std::uint64_t n = 0;
  for (const Slot& s : state_->slots) n += s.live_bytes ? s.size : 0;
  return n;
}

std::uint64_t Persister::current_live_bytes() const {
  std::uint64_t n = 0;
  for (const Slot& s : state_->slots) n += s.live_bytes;
  return n;
}

Result<CommitPlan> Persister::Capture(engine::Arena& arena, std::uint64_t now_unix_ms) {
  if (in_flight_) return Status::Busy("a commit is already in flight");
  KEEPSTATE_RETURN_IF_ERROR(ValidateOptions(options_));
  if (arena.page_size() != options_.page_size) {
    return Status::InvalidArgument("arena page size " + Num(arena.page_size()) +
                                   " differs from the store's " + Num(options_.page_size));
  }
  const PersisterState& cur = *state_;
  const std::uint32_t ps = options_.page_size;
  KEEPSTATE_ASSIGN_OR_RETURN(std::vector<engine::PageId> dirty,
                             CollectDirtyPages(arena, static_cast<std::uint32_t>(cur.pages.size())));
  std::vector<bool> in_commit;
  std::unique_ptr<PersisterState> next = StartPendingState(cur, arena.page_count(), ps, dirty, &in_commit);
  const std::vector<engine::PageId> moved =
      ChooseMovedPages(cur, options_, CountStoredPages(arena, dirty), next.get(), &in_commit);
  std::vector<engine::PageId> pages;
  pages.reserve(dirty.size() + moved.size());
  std::merge(dirty.begin(), dirty.end(), moved.begin(), moved.end(), std::back_inserter(pages));

  CommitPlan plan;
  plan.version_ = cur.version + 1;
  plan.expected_head_ = cur.head;
  plan.expected_head_record_ = cur.head_record;
  plan.clear_first_ = cur.clear_first;
  // The version this commit replaces, as recorded in its manifest and head:
  // when the stored head was unreadable, the newest version seen.
  const std::uint64_t base = cur.head == kUnreadableHead ? cur.version : cur.head;
  plan.moved_pages_ = static_cast<std::uint32_t>(moved.size());
  const std::size_t stored = CountStoredPages(arena, pages);  // blank pages go in the manifest alone
  plan.staging_size_ = stored * std::size_t{ps};
  KEEPSTATE_RETURN_IF_ERROR(TakeStaging(plan));
  const PackCut cut = CutIntoPacks(stored, options_);
  const std::vector<std::uint32_t> pack_slots = AssignPackSlots(cut, stored, plan.version_, options_, next.get());
  KEEPSTATE_RETURN_IF_ERROR(StagePages(arena, cur, pages, moved, cut, pack_slots, ps, plan.staging_.get(), next.get()));

  CommitManifest manifest = BuildManifest(cur, *next, pages, options_, plan.version_, base, now_unix_ms);
  plan.manifest_ = std::move(manifest.record);
  const std::uint64_t manifest_check = ManifestRecordChecksum(plan.manifest_).low;
  plan.head_ = EncodeHead({kFormatVersion, plan.version_, base, options_.writer_id, manifest_check});
  next->chain_keep = manifest.shape.keep;
  next->new_link = {plan.version_, manifest_check, manifest.shape.full, std::move(manifest.shape.pages)};
  plan.delta_manifest_ = !manifest.shape.full;

  const std::vector<RetainedVersion> dropped =
      RetainNewVersion(cur, next->chain_keep, manifest.manifest, options_.retain_versions, next.get());
  plan.deletes_ = ComputeDeletes(dropped, next.get());
  plan.puts_ = CommitRecords(cut, stored, plan.version_, options_, plan.staging_.get(), plan.manifest_,
                             plan.head_);

  next->version = plan.version_;
  next->head = plan.version_;
  next->head_record = plan.head_;
  plan.next_ = std::move(next);
  // Clear the bits now: pages written while the plan is in flight set them
  // again and go into the next commit; Failed() re-marks these.
  arena.ClearDirty(dirty);
  plan.captured_ = std::move(dirty);
  in_flight_ = true;
  return plan;
}

Status Persister::TakeStaging(CommitPlan& plan) {
  const std::size_t staging_bytes = std::max<std::size_t>(plan.staging_size_, 1);
  if (spare_staging_ != nullptr && spare_capacity_ >= staging_bytes) {
    plan.staging_ = std::move(spare_staging_);
    plan.staging_capacity_ = spare_capacity_;
  } else {
    spare_staging_.reset();  // too small: free it before allocating
    plan.staging_ = engine::AllocatePageBuffer(staging_bytes);
    plan.staging_capacity_ = staging_bytes;
  }
  spare_capacity_ = 0;
  if (plan.staging_ == nullptr) {
    return Status::OutOfSpace("no memory to stage " + Num(plan.staging_size_) + " bytes of pages");
  }
  return Status::Ok();
}

void Persister::Succeeded(CommitPlan&& plan) {
  assert(in_flight_ && plan.next_);
  PersisterState& next = *plan.next_;
  PersisterState& s = *state_;
  s.pages.resize(next.page_count);
  for (std::size_t k = 0; k < next.updated_pages.size(); ++k) {
    s.pages[next.updated_pages[k]] = next.updated_locations[k];
  }
  s.version = next.version;
  s.head = next.head;
  s.head_record = std::move(next.head_record);
  s.clear_first = false;
  s.slots = std::move(next.slots);
  s.retained = std::move(next.retained);
  s.orphans = std::move(next.orphans);
  s.chain.resize(next.chain_keep);
  s.chain.push_back(std::move(next.new_link));
  plan.next_.reset();
  RecycleStaging(plan);
  in_flight_ = false;
}

void Persister::RecycleStaging(CommitPlan& plan) {
  if (plan.staging_ == nullptr || plan.staging_capacity_ <= spare_capacity_) return;
  spare_staging_ = std::move(plan.staging_);
  spare_capacity_ = plan.staging_capacity_;
}

void Persister::Failed(CommitPlan&& plan, engine::Arena& arena) {
  arena.MarkDirty(plan.captured_);
  RecycleStaging(plan);
  in_flight_ = false;
}

Status Persister::Commit(engine::Arena& arena, RecordStore& store, std::uint64_t now_unix_ms) {
  KEEPSTATE_ASSIGN_OR_RETURN(CommitPlan plan, Capture(arena, now_unix_ms));
  Status s = store.Apply(plan.batch());
  if (s.ok()) {
    Succeeded(std::move(plan));
  } else {
    Failed(std::move(plan), arena);
  }
  return s;
}

RestoreOptions Persister::RestoreOptionsFor(const PersisterOptions& options) {
  RestoreOptions ro;
  ro.store_id = options.store_id;
  ro.page_size = options.page_size;
  return ro;
}

Persister Persister::FreshLine(PersisterOptions options, std::optional<std::vector<std::uint8_t>> stored_head) {
  Persister p(options);
  p.state_->head_record = std::move(stored_head);
  p.state_->clear_first = true;
  return p;
}

Result<Persister::Opened> Persister::Open(RecordStore& store, PersisterOptions options) {
  KEEPSTATE_RETURN_IF_ERROR(ValidateOptions(options));
  return OpenFrom(store, options, RestoreLatest(store, RestoreOptionsFor(options)));
}

Result<Persister::Opened> Persister::OpenFrom(RecordStore& store, PersisterOptions options,
                                              Result<Restored> restored, ManifestCache* cache) {
  KEEPSTATE_RETURN_IF_ERROR(ValidateOptions(options));
  const RestoreOptions ro = RestoreOptionsFor(options);
  if (!restored.ok()) {
    if (!restored.status().IsNotFound()) return restored.status();
    KEEPSTATE_ASSIGN_OR_RETURN(engine::Arena arena, engine::Arena::Create(options.page_size));
    return Opened{std::move(arena), Persister(options), 0, {}};
  }
  Restored& r = *restored;
  const Manifest& m = r.manifest;
  Persister p(options);
  PersisterState& s = *p.state_;
  s.version = std::max(r.newest_seen_version, m.version);
  s.head = r.head ? r.head->version : (r.head_unreadable ? kUnreadableHead : 0);
  if (Result<std::vector<std::uint8_t>> head = store.Get(RecordKind::kHead, kHeadKey); head.ok()) {
    s.head_record = std::move(*head);
  }
  s.slots.resize(m.packs.size());
  for (std::size_t i = 0; i < m.packs.size(); ++i) s.slots[i] = {m.packs[i].id, m.packs[i].size, 0};
  s.pages = m.pages;
  for (const PageLocation& loc : m.pages) {
    if (loc.pack != kBlankPage) s.slots[loc.pack].live_bytes += m.page_size;
  }

  s.chain = std::move(r.chain);
  s.retained.push_back({m.version, SortedPackIds(m), ChainVersions(s.chain)});
  // Older versions stay retained if their manifest chains verify (their
  // packs are checked when, if ever, they are restored).
  KEEPSTATE_ASSIGN_OR_RETURN(std::vector<std::string> manifest_keys, store.List(RecordKind::kManifest));
  std::vector<std::uint64_t> older;
  for (const std::string& k : manifest_keys) {
    Result<std::uint64_t> v = ParseManifestKey(k);
    if (v.ok() && *v < m.version) older.push_back(*v);
  }
  std::sort(older.rbegin(), older.rend());
  for (std::uint64_t v : older) {
    if (s.retained.size() >= options.retain_versions) break;
    Result<ResolvedManifest> om = ResolveManifest(store, v, ro, std::nullopt, cache);
    if (!om.ok()) continue;
    s.retained.push_back({v, SortedPackIds(om->manifest), ChainVersions(om->chain)});
  }
  // Everything else of ours is an orphan for the next commit to delete.
  std::set<std::uint64_t> kept_versions;
  std::set<PackId> kept_packs;
  for (const RetainedVersion& rv : s.retained) {
    kept_versions.insert(rv.manifests.begin(), rv.manifests.end());
    kept_packs.insert(rv.packs.begin(), rv.packs.end());
  }
  for (const std::string& k : manifest_keys) {
    Result<std::uint64_t> v = ParseManifestKey(k);
    if (v.ok() && !kept_versions.count(*v)) s.orphans.push_back({RecordKind::kManifest, k});
  }
  KEEPSTATE_ASSIGN_OR_RETURN(std::vector<std::string> pack_keys, store.List(RecordKind::kPack));
  for (const std::string& k : pack_keys) {
    Result<PackId> id = ParsePackKey(k);
    if (id.ok() && !kept_packs.count(*id)) s.orphans.push_back({RecordKind::kPack, k});
  }
  const std::uint64_t restored_version = m.version;
  return Opened{std::move(r.arena), std::move(p), restored_version, std::move(r.failures)};
}

}  // namespace keepstate::persistence
