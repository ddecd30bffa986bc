import { openStore } from 'keepstate';

const store = await openStore('todos'); // restores the last committed version
store.putJSON('todo:1', { title: 'Buy milk', done: false });
store.transaction((tx) => {
  const todo = tx.getJSON('todo:1');
  tx.putJSON('todo:1', { ...todo, done: true });
});
const { version } = await store.commit(); // one atomic IndexedDB transaction
console.log(version, store.getJSON('todo:1').done);
await store.close();
