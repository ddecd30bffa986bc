// The C ABI of the keepstate wasm module: THE list of exported functions.
//
// KEEPSTATE_ABI_FUNCTIONS is the single source of truth for what the module
// exports. exports.cc defines every function (static_asserts check each one
// exists with C linkage), the build generates from this list both the
// -sEXPORTED_FUNCTIONS response file and `src/generated/abi.ts` (the typed
// view of the exports plus the error codes of KEEPSTATE_STATUS_CODES), so C++
// and TypeScript cannot drift apart.
//
// Conventions:
//  - Every function returning "status" returns a keepstate::Code number
//    (status.h); on an error the message is available through
//    keepstate_error_ptr/len until the next call that fails.
//  - "out" results (values read, scan results, reports) are written into one
//    module-wide output buffer (keepstate_out_ptr/len), valid until the next
//    call. JS copies what it needs right away.
//  - Memory may grow during any call: JS re-takes HEAPU8 after every call.
//  - Stores are integer handles (never pointers). An unknown handle (never
//    created, or destroyed) is invalid-argument in every export; a known
//    store that is not open (before open, while opening) is closed.
#pragma once

// X(name, return type, "parameter names") — return type is one of
// status (int32 code), i32, u32, f64, void; every parameter is a number
// (pointers, lengths, flags as i32; versions and times as f64).
#define KEEPSTATE_ABI_FUNCTIONS(X)                                                         \
  /* Memory. */                                                                            \
  X(malloc, u32, "size")                                                                   \
  X(free, void, "ptr")                                                                     \
  /* The last error message and the output buffer. */                                      \
  X(keepstate_error_ptr, u32, "")                                                          \
  X(keepstate_error_len, u32, "")                                                          \
  X(keepstate_out_ptr, u32, "")                                                            \
  X(keepstate_out_len, u32, "")                                                            \
  /* A scratch buffer of at least `size` bytes for passing keys and values in. */          \
  X(keepstate_scratch, u32, "size")                                                        \
  /* Stores: create, feed stored records, open (restore), close. */                        \
  X(keepstate_store_new, u32, "page_size retain writer_id open_empty_if_damaged")          \
  X(keepstate_store_load_record, status, "store kind key key_len bytes bytes_len")        \
  X(keepstate_store_load_unread, status, "store kind key key_len")                          \
  X(keepstate_store_read_manifests_from, status, "store")                                   \
  X(keepstate_store_open, status, "store")                                                 \
  X(keepstate_store_open_pack, status, "store bytes bytes_len present")                   \
  X(keepstate_store_open_from, status, "store base in_place")                              \
  X(keepstate_store_adopt_in_place, status, "store")                                       \
  X(keepstate_store_destroy, void, "store")                                                \
  X(keepstate_store_version, f64, "store")                                                 \
  X(keepstate_store_dirty, i32, "store")                                                   \
  /* Reads and writes; in_txn = 1 goes through the open transaction. */                   \
  X(keepstate_store_get, status, "store in_txn key key_len")                              \
  X(keepstate_store_has, status, "store in_txn key key_len")                              \
  X(keepstate_store_put, status, "store in_txn key key_len value value_len")              \
  X(keepstate_store_delete, status, "store in_txn key key_len")                           \
  X(keepstate_store_scan, status,                                                          \
    "store in_txn prefix prefix_len has_prefix start start_len end end_len has_end limit reverse") \
  X(keepstate_store_begin, status, "store")                                                \
  X(keepstate_store_end, status, "store commit")                                           \
  /* Schema versions and migrations (the superblock's user version; in_txn as for reads). */ \
  X(keepstate_store_schema_version, f64, "store in_txn")                                   \
  X(keepstate_store_set_schema_version, status, "store version")                           \
  X(keepstate_store_run_migrations, status, "store from to")                               \
  X(keepstate_migrations_newest, f64, "")                                                  \
  /* Snapshot files (docs/snapshot-format.md): export a clean store in chunks; import one */ \
  /* verified whole before a store adopts it. */                                           \
  X(keepstate_export_begin, status, "store now_ms size_out")                               \
  X(keepstate_export_read, status, "store buffer capacity n_out")                         \
  X(keepstate_export_end, void, "store")                                                   \
  X(keepstate_import_begin, u32, "file_size")                                              \
  X(keepstate_import_add, status, "id bytes bytes_len")                                    \
  X(keepstate_import_finish, status, "id")                                                 \
  X(keepstate_import_adopt, status, "store id")                                            \
  X(keepstate_import_discard, void, "id")                                                  \
  /* Changes (watch): record written keys, take them, diff two states. */                 \
  X(keepstate_store_watch, status, "store ranges ranges_len")                              \
  X(keepstate_store_take_changes, status, "store")                                         \
  X(keepstate_store_diff, status, "before after")                                          \
  /* Commits: capture, describe, check the stored head, finish. */                        \
  X(keepstate_store_capture, status, "store now_ms")                                       \
  X(keepstate_store_plan, u32, "store")                                                    \
  X(keepstate_store_check_head, status, "store head head_len present actual_out")         \
  X(keepstate_store_commit_done, status, "store code")                                     \
  /* The head check for writes no store captured (stashes, the copy's rewrite), and the */ \
  /* version a head record claims (layout HEAD_*). */                                      \
  X(keepstate_check_stored_head, status,                                                   \
    "expected expected_len expected_present stored stored_len stored_present actual_out")  \
  X(keepstate_head_version, f64, "bytes bytes_len")                                        \
  /* The scheduler driver. */                                                               \
  X(keepstate_scheduler, u32, "")                                                          \
  X(keepstate_scheduler_run_for, void, "scheduler budget_ms out")                          \
  X(keepstate_scheduler_complete_token, status, "scheduler token code payload size")      \
  /* Mutators (keepstate::sdk): start a call as a fiber, collect finished ones. */          \
  X(keepstate_call, status, "store name name_len args args_len id_out")                   \
  X(keepstate_call_take, i32, "id_out")                                                    \
  /* Read-only queries (KEEPSTATE_QUERY): started and taken like mutator calls. */         \
  X(keepstate_query, status, "store name name_len args args_len id_out")                  \
  /* Sync (docs/sync.md): the journal a synced store keeps in its own state. */            \
  X(keepstate_sync_init, status, "store client client_len")                                 \
  X(keepstate_sync_state, status, "store")                                                  \
  X(keepstate_sync_pending, status, "store after max_count max_bytes")                      \
  X(keepstate_sync_marked, status, "store")                                                 \
  X(keepstate_sync_apply, status, "store version last_mutation_id entries entries_len")     \
  X(keepstate_sync_replay, status, "store mutation_id id_out")                              \
  X(keepstate_sync_adopt, status, "store import_id")

// Wire layouts: where the bytes C++ writes into linear memory for JS lie,
// defined once here, generated into abi.ts as WIRE (the TypeScript side reads
// no other offsets) and mirrored by static_asserts where C++ writes them.
// X(NAME, value, "meaning")
#define KEEPSTATE_WIRE_LAYOUTS(X)                                                              \
  /* keepstate_store_plan: u32 words: a header, then each put, then each delete. */          \
  X(PLAN_PUT_COUNT, 0, "header word: the number of puts")                                    \
  X(PLAN_DELETE_COUNT, 1, "header word: the number of deletes")                              \
  X(PLAN_CLEAR_FIRST, 2, "header word: 1 = a fresh line, clear the store before the puts")   \
  X(PLAN_HAS_EXPECTED_HEAD, 3, "header word: 1 = the batch expects a stored head (below)")   \
  X(PLAN_EXPECTED_HEAD_PTR, 4, "header word: the expected head record's bytes")             \
  X(PLAN_EXPECTED_HEAD_LEN, 5, "header word: their length")                                 \
  X(PLAN_HEADER_WORDS, 6, "words in the header")                                             \
  X(PLAN_PUT_WORDS, 5, "words per put, in order: kind, key ptr, key len, bytes ptr, bytes len") \
  X(PLAN_DELETE_WORDS, 3, "words per delete, in order: kind, key ptr, key len")              \
  /* keepstate_store_scan: u32 count, then per entry u32 key len, u32 value len, key, value. */ \
  X(SCAN_COUNT_BYTES, 4, "bytes of the entry count")                                         \
  X(SCAN_ENTRY_HEADER_BYTES, 8, "bytes before each entry's key: key len, value len")         \
  /* keepstate_store_take_changes, keepstate_store_diff: the SCAN_ layout, in key order. */  \
  X(CHANGE_DELETED, 4294967295, "value len of a key that no longer exists (no value bytes)") \
  /* keepstate_store_watch: u32 count, then per range u32 start len, start, u32 end len, end. */ \
  X(WATCH_UNBOUNDED, 4294967295, "end len of a range with no end (no end bytes)")            \
  /* Limits JS checks before it copies anything into wasm memory (engine/btree.h). */       \
  X(MAX_KEY_BYTES, 1024, "the longest key, in UTF-8 bytes (engine::kMaxKeySize)")            \
  X(MAX_VALUE_BYTES, 16777216, "the longest value, in bytes (engine::kMaxValueSize)")        \
  X(MAX_ARGS_BYTES, 16777216, "the longest mutator args, in bytes")                          \
  X(MIN_PAGE_SIZE, 4096, "the smallest page size (engine::kMinPageSize); page sizes are powers of two") \
  X(MAX_PAGE_SIZE, 65536, "the largest page size (engine::kMaxPageSize)")                   \
  /* keepstate_scheduler_run_for: a KeepstateRunResult (scheduler/c_api.h). */               \
  X(RUN_RESULT_BYTES, 16, "size of the result")                                              \
  X(RUN_HAS_READY_WORK, 0, "offset of has_ready_work (u32)")                                 \
  X(RUN_HAS_TIMER, 4, "offset of has_timer (u32)")                                           \
  X(RUN_TIMER_DELAY_MS, 8, "offset of next_timer_delay_ms (f64)")                          \
  /* The head record (docs/snapshot-format.md "Head record"; keepstate_head_version reads */ \
  /* it, keepstate_check_stored_head compares two): little-endian fields at these offsets. */ \
  X(HEAD_RECORD_BYTES, 48, "size of a head record")                                          \
  X(HEAD_MAGIC, 1145590603, "u32 at HEAD_MAGIC_OFFSET: 0x4448534B, KSHD little-endian")     \
  X(HEAD_MAGIC_OFFSET, 0, "offset of the magic (u32)")                                       \
  X(HEAD_FORMAT_VERSION_OFFSET, 4, "offset of the writer's format version (u32)")            \
  X(HEAD_VERSION_OFFSET, 8, "offset of the current version (u64)")                           \
  X(HEAD_BASE_VERSION_OFFSET, 16, "offset of the version it replaced (u64, 0: none)")        \
  X(HEAD_WRITER_ID_OFFSET, 24, "offset of the committing writer's id (u64)")                 \
  X(HEAD_MANIFEST_CHECK_OFFSET, 32, "offset of the manifest record's checksum, low 64 bits (u64)") \
  X(HEAD_CHECKSUM_OFFSET, 40, "offset of the XXH3-64 of the bytes before it (u64)")          \
  /* Manifest keys (object store "manifests"): the version in lowercase hex, zero-padded. */ \
  X(MANIFEST_KEY_HEX_DIGITS, 16, "length of a manifest key: hex digits of the version")
