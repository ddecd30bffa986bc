// A todo list that survives reloads and syncs between tabs.
//
// The state lives in a keepstate store: one key per todo (`todo/<id>`,
// JSON), committed by autosave. Each todo's row renders from useJSON, the
// list from useScan, so a change re-renders only what it touches. Open the
// page in two tabs: each follows the other's commits (and rebases its own
// pending writes onto them), and the hooks re-render with what arrived.
import { createRoot } from 'react-dom/client';
import { openStore } from 'keepstate';
import { App } from './App.jsx';

const store = await openStore('todos', { autosave: 100 });
window.todos = { store }; // for the e2e test and the curious
createRoot(document.getElementById('root')).render(<App store={store} />);
