// A todo list that survives reloads and syncs between tabs.
//
// The state lives in a keepstate store: one key per todo (`todo/<id>`,
// JSON), committed by autosave. Each todo's row renders from useJSON, the
// list from useScanJSON, so a change re-renders only what it touches; the
// "saved, version N" line from useStoreStatus. Open the
// page in two tabs: each follows the other's commits (and rebases its own
// pending writes onto them), and the hooks re-render with what arrived.
import { createRoot } from 'react-dom/client';
import { openStore } from 'keepstate';
import { App } from './App.jsx';

const store = await openStore('todos', { autosave: 100 });
const root = createRoot(document.getElementById('root'));
let mounts = 0;
// A fresh App (new hooks) on the same store, e.g. after store.close().
const remount = () => root.render(<App key={++mounts} store={store} />);
window.todos = { store, remount }; // for the e2e test and the curious
remount();
