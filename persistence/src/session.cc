// StoreSession: see session.h.
#include "keepstate/persistence/session.h"

#include <string>
#include <utility>
#include <vector>

namespace keepstate::persistence {
namespace {

// The page size of the newest manifest that decodes, if any: an existing
// store keeps the page size it was created with, whatever the caller asks.
std::optional<std::uint32_t> StoredPageSize(RecordStore& records) {
  Result<std::vector<std::string>> keys = records.List(RecordKind::kManifest);
  if (!keys.ok()) return std::nullopt;
  for (auto it = keys->rbegin(); it != keys->rend(); ++it) {
    Result<std::vector<std::uint8_t>> bytes = records.Get(RecordKind::kManifest, *it);
    if (!bytes.ok()) continue;
    Result<Manifest> m = DecodeManifest(*bytes);
    if (m.ok()) return m->page_size;
  }
  return std::nullopt;
}

}  // namespace

StoreSession::StoreSession(PersisterOptions options)
    : options_(options), requested_page_size_(options.page_size), loading_(std::make_unique<MemoryRecordStore>()) {}
StoreSession::~StoreSession() = default;
StoreSession::StoreSession(StoreSession&&) noexcept = default;
StoreSession& StoreSession::operator=(StoreSession&&) noexcept = default;

Status StoreSession::Load(RecordKind kind, std::string_view key, std::span<const std::uint8_t> bytes) {
  if (loading_ == nullptr || restoring_ || begin_error_) {
    return Status::Closed("records can only be loaded before the store opens");
  }
  if (static_cast<int>(kind) >= kRecordKindCount) {
    return Status::InvalidArgument("bad record kind " + std::to_string(static_cast<int>(kind)));
  }
  loading_->Put(kind, std::string(key), std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  return Status::Ok();
}

Status StoreSession::LoadUnread(RecordKind kind, std::string_view key) {
  if (loading_ == nullptr || restoring_ || begin_error_) {
    return Status::Closed("records can only be loaded before the store opens");
  }
  if (static_cast<int>(kind) >= kRecordKindCount) {
    return Status::InvalidArgument("bad record kind " + std::to_string(static_cast<int>(kind)));
  }
  loading_->PutUnread(kind, std::string(key));
  return Status::Ok();
}

Status StoreSession::BeginOpen(const RestoreBase* base) {
  if (loading_ == nullptr || restoring_ || begin_error_) return Status::Closed("the store is already open");
  if (std::optional<std::uint32_t> ps = StoredPageSize(*loading_)) options_.page_size = *ps;
  Result<std::vector<std::uint8_t>> head = loading_->Get(RecordKind::kHead, kHeadKey);
  if (head.ok()) known_head_ = std::move(*head);
  if (base != nullptr && base->manifests != nullptr) manifests_ = *base->manifests;
  Result<RestoreSession> session =
      RestoreSession::Begin(*loading_, Persister::RestoreOptionsFor(options_), base, &manifests_);
  based_ = base != nullptr;
  in_place_ = base != nullptr && base->stage_only;
  if (session.ok()) {
    restoring_.emplace(std::move(*session));
  } else {
    begin_error_.emplace(session.status());
  }
  return Status::Ok();
}

std::optional<PackId> StoreSession::needed() const { return restoring_ ? restoring_->needed() : std::nullopt; }

std::optional<PackId> StoreSession::needed_after() const {
  return restoring_ ? restoring_->needed_after() : std::nullopt;
}

std::vector<PackId> StoreSession::needed_ahead(std::size_t max) const {
  return restoring_ ? restoring_->needed_ahead(max) : std::vector<PackId>{};
}

std::uint64_t StoreSession::needed_bytes() const { return restoring_ ? restoring_->needed_bytes() : 0; }

void StoreSession::AddPack(std::optional<std::span<const std::uint8_t>> pack) {
  if (!needed()) return;
  // A verification failure moves the restore on; a stopping error comes back
  // from Finish.
  restoring_->Add(pack).IgnoreError();
}

Result<engine::Arena> StoreSession::FinishOpen(OpenReport* report) {
  if (!restoring_ && !begin_error_) return Status::Closed("the store is not opening");
  if (needed()) return Status::Internal("FinishOpen before every needed pack was added");
  // Kept for the report: Finish hands them to the restored state, or drops them with an error.
  std::vector<VersionFailure> failures = restoring_ ? restoring_->failures() : std::vector<VersionFailure>{};
  Result<Restored> restored = restoring_ ? std::move(*restoring_).Finish() : std::move(*begin_error_);
  restoring_.reset();
  begin_error_.reset();
  *report = OpenReport{};
  if (based_ && restored.ok()) {
    report->read_pages = restored->read_pages;
    report->staged = std::move(restored->staged);
    report->page_count = restored->manifest.page_count;
    report->in_place = in_place_;
  }
  Result<Persister::Opened> opened = Persister::OpenFrom(*loading_, options_, std::move(restored), &manifests_);
  if (loading_->unread_requested()) {
    // A manifest left unread was needed (its cached copy did not match): what
    // was restored may have fallen back for want of it, so none of it counts.
    return Status::NotFound("the open needed a manifest that was not read: read every manifest");
  }
  if (opened.ok()) {
    loading_.reset();
    persister_.emplace(std::move(opened->persister));
    manifests_.KeepOnly(persister_->RetainedManifests());
    version_ = opened->restored_version;
    report->restored_version = version_;
    report->failures = std::move(opened->failures);
    return std::move(opened->arena);
  }
  if (opened.status().code() != Code::kCorruption) return opened.status();
  // Nothing verified. Each version tried, and why, goes into the report either way.
  report->failures = std::move(failures);
  if (report->failures.empty()) report->failures.push_back({0, opened.status()});
  if (options_.on_all_damaged != OnAllDamaged::kOpenEmpty) {
    // Refuse, touching nothing: this session stays unopened, its records as
    // they are, for a repair or an open that asks for an empty state.
    std::string message = "every retained version is damaged; nothing was changed:";
    for (const VersionFailure& f : report->failures) message += " [" + f.status.message() + "]";
    return Status::Corruption(message);
  }
  // Asked to open empty: say so; the first commit replaces the unreadable
  // records (a fresh version line), expecting exactly the head found (or none).
  options_.page_size = requested_page_size_;
  Result<engine::Arena> arena = engine::Arena::Create(options_.page_size);
  if (!arena.ok()) return arena.status();
  loading_.reset();
  persister_.emplace(Persister::FreshLine(options_, known_head_));
  manifests_ = ManifestCache{};
  fresh_line_ = true;
  version_ = 0;
  report->fresh_line = true;
  return std::move(*arena);
}

Result<engine::Arena> StoreSession::Open(RecordStore& store, OpenReport* report) {
  for (RecordKind kind : {RecordKind::kHead, RecordKind::kManifest, RecordKind::kPack}) {
    KEEPSTATE_ASSIGN_OR_RETURN(std::vector<std::string> keys, store.List(kind));
    for (const std::string& key : keys) {
      if (kind == RecordKind::kPack) {
        KEEPSTATE_RETURN_IF_ERROR(Load(kind, key, {}));
        continue;
      }
      KEEPSTATE_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, store.Get(kind, key));
      KEEPSTATE_RETURN_IF_ERROR(Load(kind, key, bytes));
    }
  }
  KEEPSTATE_RETURN_IF_ERROR(BeginOpen());
  std::vector<std::uint8_t> pack;
  while (std::optional<PackId> id = needed()) {
    Status read = store.GetInto(RecordKind::kPack, PackKey(*id), pack);
    if (read.ok()) {
      AddPack(std::span<const std::uint8_t>(pack));
    } else if (read.IsNotFound()) {
      AddPack(std::nullopt);
    } else {
      restoring_->Fail(read);
    }
  }
  return FinishOpen(report);
}

Status StoreSession::Capture(engine::Arena& arena, std::uint64_t now_unix_ms) {
  if (!persister_) return Status::Closed("the store is not open");
  if (plan_) return Status::Busy("a commit is already in flight");
  KEEPSTATE_ASSIGN_OR_RETURN(CommitPlan plan, persister_->Capture(arena, now_unix_ms));
  plan_.emplace(std::move(plan));
  return Status::Ok();
}

WriteBatch StoreSession::batch() const { return plan_->batch(); }

Status StoreSession::CheckHead(std::optional<std::span<const std::uint8_t>> stored, double* stored_version) const {
  if (!plan_) return Status::Closed("no commit is in flight");
  *stored_version = StoredHeadVersion(stored);
  return CheckStoredHead(batch(), stored);
}

void StoreSession::CommitDone(const Status& outcome, engine::Arena& arena) {
  CommitPlan plan = std::move(*plan_);
  plan_.reset();
  if (outcome.ok()) {
    version_ = plan.version();
    fresh_line_ = false;
    persister_->Succeeded(std::move(plan));
    manifests_.KeepOnly(persister_->RetainedManifests());
  } else {
    persister_->Failed(std::move(plan), arena);
  }
}

Status StoreSession::Commit(engine::Arena& arena, RecordStore& store, std::uint64_t now_unix_ms) {
  KEEPSTATE_RETURN_IF_ERROR(Capture(arena, now_unix_ms));
  Status applied = store.Apply(batch());
  CommitDone(applied, arena);
  return applied;
}

std::uint64_t StoreSession::ReadManifestsFrom() const {
  const std::set<std::uint64_t> own = persister_->RetainedVersions();
  for (std::uint64_t v : persister_->RetainedManifests()) {
    if (own.count(v) || !manifests_.Holds(v)) return v;
  }
  return persister_->version() + 1;
}

}  // namespace keepstate::persistence
