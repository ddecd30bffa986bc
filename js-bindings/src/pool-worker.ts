// The Worker of one read replica of a pool (pool.ts starts it with
// `new Worker(new URL('./pool-worker.js', import.meta.url), { type: 'module' })`):
// serves the pool's messages with a Reader in this Worker's own module
// instance, instantiated from the compiled module the pool posts (no second
// compile). It reads the store's IndexedDB directly and hears commits on the
// store's BroadcastChannel; it never writes.
import { serveReplica, type ReplicaEndpoint } from './replica-host.js';
import type { KeepstateModuleFactory } from './keepstate.js';

const scope = globalThis as unknown as ReplicaEndpoint & { close(): void };

serveReplica(scope, {
  async factory(glueUrl) {
    // The package's own glue sits next to this file (bundlers see the import).
    const glue = (glueUrl === undefined ? await import('./keepstate.js') : await import(/* @vite-ignore */ /* webpackIgnore: true */ glueUrl)) as {
      default: KeepstateModuleFactory;
    };
    return glue.default;
  },
  importQueries: (url) => import(/* @vite-ignore */ /* webpackIgnore: true */ url) as Promise<Record<string, unknown>>,
  exit: () => scope.close(),
});
