// Leaving a page (docs/tabs.md, "Leaving a page"): `hidden()` when the page
// is hidden (visibilitychange) or kept in the back/forward cache (pagehide
// with persisted), `unloaded()` when it is unloaded for good (pagehide
// without): then no later task runs, so whatever is done must be issued in
// that call. Nothing in a worker (it has no such events).
type Target = {
  addEventListener(type: string, fn: (event: { persisted?: boolean }) => void): void;
  removeEventListener(type: string, fn: (event: { persisted?: boolean }) => void): void;
};

/** Calls `hidden` / `unloaded` as the page is left; returns the remover. */
export function onLeavingPage(on: { hidden(): void; unloaded(): void }): () => void {
  const doc = (globalThis as { document?: Target & { visibilityState: string } }).document;
  const win = globalThis as unknown as Target;
  if (doc === undefined) return () => undefined;
  const onVisibility = () => {
    if (doc.visibilityState === 'hidden') on.hidden();
  };
  const onPageHide = (event: { persisted?: boolean }) => {
    if (event.persisted === true) on.hidden();
    else on.unloaded();
  };
  doc.addEventListener('visibilitychange', onVisibility);
  win.addEventListener('pagehide', onPageHide);
  return () => {
    doc.removeEventListener('visibilitychange', onVisibility);
    win.removeEventListener('pagehide', onPageHide);
  };
}
