// The translation unit of a keepstate wasm module that adds no C++ of its
// own (keepstate_add_wasm_module without SOURCES): everything it exports
// comes from keepstate_exports. A module needs no main(); the JS side drives
// it through the C ABI.
