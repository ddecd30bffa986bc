// A small static server for the demo page and the browser tests, on 127.0.0.1.
//
//   import { startServer } from './server.mjs';
//   const { url, close } = await startServer({ port: 0 });   // 0: any free port
//
// Routes (no bundler, no copies: each prefix maps to a folder of the repo):
//   /                 e2e/app/                          the demo page
//   /keepstate/       js-bindings/dist/                 the npm package's build
//   /ledger/          build/wasm-release/examples/ledger/  the ledger module + its JS
//   /node_modules/    node_modules/                     e.g. flatbuffers (import map)
// A route may carry response headers of its own as a third element, e.g.
// `['/bench-coi/', dir, COI_HEADERS]` for a page that needs cross-origin
// isolation (SharedArrayBuffer); the others get none.
// `.wasm` is served as application/wasm; nothing is cached (a rebuild shows
// up on reload). Paths outside those folders are 404. `startServer({ root })`
// serves one folder at / instead (the Playwright suite serves the repository
// root and an unpacked `npm pack` tarball that way).
//
// Run directly (make serve):  node e2e/server.mjs [--port 8080]
import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));

/** URL prefix -> folder [, extra response headers], longest prefix first. */
export const ROUTES = [
  ['/keepstate/', join(repo, 'js-bindings/dist')],
  ['/ledger/', join(repo, 'build/wasm-release/examples/ledger')],
  ['/node_modules/', join(repo, 'node_modules')],
  ['/', join(repo, 'e2e/app')],
];

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ts': 'text/plain; charset=utf-8',
};

/** The headers that make a page cross-origin isolated (crossOriginIsolated, SharedArrayBuffer). */
export const COI_HEADERS = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

/** The file a request path maps to and its route's extra headers, or undefined (unknown route or an escape attempt). */
export function resolveRoute(pathname, routes = ROUTES) {
  let decoded;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  for (const [prefix, dir, headers = {}] of routes) {
    if (!decoded.startsWith(prefix)) continue;
    const rest = decoded.slice(prefix.length) || 'index.html';
    const file = normalize(join(dir, rest));
    return file === dir || file.startsWith(dir + sep) ? { file, headers } : undefined;
  }
  return undefined;
}

/** The file a request path maps to, or undefined (unknown route or an escape attempt). */
export const resolvePath = (pathname, routes = ROUTES) => resolveRoute(pathname, routes)?.file;

/**
 * Starts the server; resolves with its base URL (ends in '/'), its origin
 * (no trailing '/') and a close function.
 */
export async function startServer({ port = 0, host = '127.0.0.1', root } = {}) {
  const routes = root === undefined ? ROUTES : [['/', resolve(root)]];
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    const route = resolveRoute(pathname, routes);
    let file = route?.file;
    try {
      if (file === undefined) throw new Error('no route');
      let info = await stat(file);
      if (info.isDirectory()) {
        file = join(file, 'index.html');
        info = await stat(file);
      }
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'content-length': info.size,
        'cache-control': 'no-store',
        ...route.headers,
      });
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`not found: ${pathname}\n`);
    }
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, ok);
  });
  const { port: actual } = server.address();
  const origin = `http://${host}:${actual}`;
  return {
    url: `${origin}/`,
    origin,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const i = process.argv.indexOf('--port');
  const port = i > 0 ? Number(process.argv[i + 1]) : Number(process.env.PORT ?? 8080);
  const { url } = await startServer({ port });
  console.log(`keepstate demo: ${url}  (Ctrl-C to stop)`);
  console.log(`open it in a browser on this machine; from elsewhere, forward the port (ssh -L ${port}:127.0.0.1:${port} <host>)`);
}
