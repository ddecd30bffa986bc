// A dedicated module Worker hosting ops.js: the page forwards each call as a
// message {id, name, args} and gets {id, result} back.
import { run } from './ops.js';

self.onmessage = async ({ data: { id, name, args } }) => {
  self.postMessage({ id, result: await run(name, args) });
};
