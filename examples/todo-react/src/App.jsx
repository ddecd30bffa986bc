import { useState } from 'react';
import { useJSON, useScanJSON, useStoreStatus } from 'keepstate/react';

function Todo({ store, id }) {
  const todo = useJSON(store, `todo/${id}`);
  if (todo === undefined) return null;
  const toggle = () => store.putJSON(`todo/${id}`, { ...todo, done: !todo.done });
  const remove = () => store.delete(`todo/${id}`);
  return (
    <li className={todo.done ? 'done' : ''} data-id={id}>
      <input type="checkbox" checked={todo.done} onChange={toggle} aria-label={`done: ${todo.title}`} />
      <span>{todo.title}</span> <button onClick={remove} aria-label={`remove ${todo.title}`}>×</button>
    </li>
  );
}

export function App({ store }) {
  const [title, setTitle] = useState('');
  const todos = useScanJSON(store, { prefix: 'todo/' });
  const { version, dirty } = useStoreStatus(store);
  const open = todos.filter(([, todo]) => !todo.done).length;
  const add = (e) => {
    e.preventDefault();
    if (title.trim() === '') return;
    // Ids from the clock and a random part: two tabs adding at once never collide.
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    store.putJSON(`todo/${id}`, { title: title.trim(), done: false });
    setTitle('');
  };
  return (
    <main>
      <h1>Todos</h1>
      <form onSubmit={add}>
        <input type="text" value={title} onChange={(e) => setTitle(e.target.value)} placeholder="What needs doing?" aria-label="new todo" />
        <button type="submit">Add</button>
      </form>
      <ul id="list">
        {todos.map(([key]) => (
          <Todo key={key} store={store} id={key.slice('todo/'.length)} />
        ))}
      </ul>
      <p id="status">
        {open} open of {todos.length}
      </p>
      <p id="saved">{dirty ? 'saving…' : `saved, version ${version}`}</p>
    </main>
  );
}
