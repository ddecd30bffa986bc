import { openStore } from 'keepstate';

type Todo = { title: string; done: boolean };
const store = await openStore('todos'); // restores the last committed version
store.putJSON('todo/1', { title: 'Buy milk', done: false });
store.transaction((tx) => {
  const todo = tx.getJSON<Todo>('todo/1')!; // read-your-writes
  tx.putJSON('todo/1', { ...todo, done: true });
});
const { version } = await store.commit(); // one atomic IndexedDB transaction
console.log(version, store.getJSON<Todo>('todo/1')?.done);
await store.close();
