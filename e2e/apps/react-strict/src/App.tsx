// Every hook of keepstate/react, each rendering into an element of its own.
import type { Store } from 'keepstate';
import { useJSON, useScan, useScanJSON, useStoreStatus, useText, useValue, type StoreStatus } from 'keepstate/react';

interface Note {
  title: string;
  done: boolean;
}

function Pinned({ store }: { store: Store }) {
  const note = useJSON<Note>(store, 'pinned');
  return <p id="pinned">{note === undefined ? 'none' : `${note.title}${note.done ? ' (done)' : ''}`}</p>;
}

function Notes({ store }: { store: Store }) {
  const notes = useScanJSON<Note>(store, { prefix: 'note/' });
  return (
    <ul id="notes">
      {notes.map(([key, note]) => (
        <li key={key}>{note.done ? `✓ ${note.title}` : note.title}</li>
      ))}
    </ul>
  );
}

function Tags({ store }: { store: Store }) {
  const tags = useScan(store, { prefix: 'tag/', reverse: true });
  const decoder = new TextDecoder();
  return <p id="tags">{tags.map(([key, bytes]) => `${key.slice(4)}=${decoder.decode(bytes)}`).join(' ')}</p>;
}

function Status({ store }: { store: Store }) {
  const status: StoreStatus = useStoreStatus(store);
  return <p id="status">{status.closed ? 'closed' : status.dirty ? 'saving…' : `saved, version ${status.version}`}</p>;
}

export function App({ store }: { store: Store }) {
  const title = useText(store, 'title');
  const avatar = useValue(store, 'avatar');
  return (
    <main>
      <h1 id="title">{title ?? 'untitled'}</h1>
      <p id="avatar">{avatar === undefined ? 'no avatar' : `avatar of ${avatar.length} bytes, first ${avatar[0] ?? '-'}`}</p>
      <Pinned store={store} />
      <Notes store={store} />
      <Tags store={store} />
      <Status store={store} />
    </main>
  );
}
