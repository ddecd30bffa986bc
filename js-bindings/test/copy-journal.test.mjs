// Every test of copy.test.mjs again, with the OPFS copy keeping small commits
// in its journal (storage/journal.ts): memoryDirectory's files have sync
// handles when KEEPSTATE_TEST_JOURNAL is 1 (each test file runs in a process
// of its own).
process.env.KEEPSTATE_TEST_JOURNAL = '1';
await import('./copy.test.mjs');
