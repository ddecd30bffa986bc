// The app's entry: starts loading the engine at once (preload), opens the
// store, renders. window.notes is for the e2e test.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { openStore, preload, type Store } from 'keepstate';
import { App } from './App';

void preload();

declare global {
  interface Window {
    notes?: { store: Store };
  }
}

const store = await openStore('notes', { autosave: 50 });
window.notes = { store };
const root = document.getElementById('root');
if (root === null) throw new Error('no #root');
createRoot(root).render(
  <StrictMode>
    <App store={store} />
  </StrictMode>,
);
