// The declaration of the module js-bindings/tools/bundle-journal-worker.mjs
// writes into dist/ after tsc (the journal's Worker, bundled into one script).
/** The journal's Worker as one classic script. */
declare const source: string;
export default source;
