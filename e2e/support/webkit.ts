// WebKitGTK's MiniBrowser as a Session, driven over classic WebDriver (HTTP)
// by Debian's WebKitWebDriver: plain fetch to its endpoints, no client
// library (the handful of commands used here do not justify one).
// MiniBrowser needs a display and has no headless mode, so the driver runs
// under `xvfb-run -a` (MiniBrowser inherits its DISPLAY).
//
// Commands act on the session's current window: every tab switches to its
// own window first, and commands run one at a time (a queue), so two tabs'
// calls never interleave a switch and a command.
//
// What the automation session cannot do (docs/browsers.md): its website data
// does not outlive the session (MiniBrowser under --automation keeps it in
// memory), and the console is not observable over classic WebDriver.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Session, Tab } from './session';

export const WEBKIT_DRIVER = '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A WebKitWebDriver process under xvfb-run: started once per test worker, shared by its sessions. */
export class WebKitDriver {
  private constructor(readonly url: string, private readonly process: ChildProcess) {}

  static async start(): Promise<WebKitDriver> {
    const port = await freePort();
    const proc = spawn('xvfb-run', ['-a', WEBKIT_DRIVER, `--port=${port}`, '--host=127.0.0.1'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true, // its own process group: stop() ends xvfb, the driver and any browser
    });
    let stderr = '';
    proc.stderr!.on('data', (chunk) => (stderr += chunk));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`WebKitWebDriver exited (${proc.exitCode}): ${stderr}`);
      const ready = await fetch(`${url}/status`).then((r) => r.ok, () => false);
      if (ready) return new WebKitDriver(url, proc);
      if (Date.now() > deadline) throw new Error(`WebKitWebDriver did not answer on ${url}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Sends one WebDriver command; resolves with its `value`, throws its error. */
  async command(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<any> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const { value } = (await response.json()) as { value: any };
    if (!response.ok) throw new Error(`WebDriver ${method} ${path}: ${value?.error}: ${value?.message}`);
    return value;
  }

  async stop(): Promise<void> {
    try {
      process.kill(-this.process.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

const UNDEFINED = '__keepstate_undefined__';

function untag(v: any): any {
  if (Array.isArray(v)) return v.map(untag);
  if (v !== null && typeof v === 'object') {
    if (Object.keys(v).length === 1 && UNDEFINED in v) return undefined;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, untag(x)]));
  }
  return v;
}

class WebDriverTab implements Tab {
  constructor(
    private readonly session: WebKitSession,
    readonly handle: string,
  ) {}
  private run<T>(fn: () => Promise<T>): Promise<T> {
    return this.session.inWindow(this.handle, fn);
  }
  async goto(url: string): Promise<void> {
    await this.run(() => this.session.command('POST', '/url', { url }));
  }
  async reload(): Promise<void> {
    await this.run(() => this.session.command('POST', '/refresh', {}));
  }
  async evaluate<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R> {
    // Execute Script awaits a returned promise (WebDriver spec), within the script
    // timeout. Its result travels as JSON, which has no `undefined`: the page tags
    // it (as Playwright's evaluate keeps it) and `untag` restores it.
    const script = `const tag = (v) => v === undefined ? { [${JSON.stringify(UNDEFINED)}]: 1 }
        : Array.isArray(v) ? v.map(tag)
        : v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, tag(x)])) : v;
      return tag(await (${fn.toString()})(arguments[0]));`;
    const body = `return (async () => { ${script} })();`;
    return untag(await this.run(() => this.session.command('POST', '/execute/sync', { script: body, args: [arg] })));
  }
  onConsole(): void {
    throw new Error('classic WebDriver does not report console messages (WebKitGTK project)');
  }
  async screenshot(path: string): Promise<void> {
    const png: string = await this.run(() => this.session.command('GET', '/screenshot'));
    await writeFile(path, Buffer.from(png, 'base64'));
  }
  url(): Promise<string> {
    return this.run(() => this.session.command('GET', '/url'));
  }
  async close(): Promise<void> {
    await this.run(() => this.session.command('DELETE', '/window'));
    this.session.forget(this);
  }
}

export class WebKitSession implements Session {
  readonly engine = 'webkit' as const;
  private readonly open: WebDriverTab[] = [];
  private unused: string | undefined;
  private current: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly driver: WebKitDriver,
    private readonly id: string,
  ) {}

  /** A new MiniBrowser (one WebDriver session). */
  static async launch(driver: WebKitDriver): Promise<WebKitSession> {
    const { sessionId } = await driver.command('POST', '/session', {
      capabilities: {
        alwaysMatch: {
          browserName: 'MiniBrowser',
          'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
        },
      },
    });
    const session = new WebKitSession(driver, sessionId);
    await session.command('POST', '/timeouts', { script: 120_000, pageLoad: 60_000 });
    session.unused = session.current = await session.command('GET', '/window');
    await session.command('POST', '/window/rect', { width: 1000, height: 700 }).catch(() => undefined);
    return session;
  }

  /** @internal A command of this session (path relative to /session/<id>). */
  command(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<any> {
    return this.driver.command(method, `/session/${this.id}${path}`, body);
  }

  /** @internal Runs `fn` with window `handle` current, after every command queued before it. */
  inWindow<T>(handle: string | undefined, fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      if (handle !== undefined && this.current !== handle) {
        await this.command('POST', '/window', { handle });
        this.current = handle;
      }
      return fn();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** @internal */
  forget(tab: WebDriverTab): void {
    this.open.splice(this.open.indexOf(tab), 1);
    if (this.current === tab.handle) this.current = undefined;
  }

  async newTab(): Promise<Tab> {
    let handle = this.unused;
    this.unused = undefined;
    if (handle === undefined) {
      // A window, not a tab: MiniBrowser's background tab is hidden, and the two-tab
      // spec hung there (its calls never completed); a second window stays visible.
      handle = (await this.inWindow(undefined, () => this.command('POST', '/window/new', { type: 'window' }))).handle as string;
    }
    const tab = new WebDriverTab(this, handle);
    this.open.push(tab);
    return tab;
  }

  tabs(): Tab[] {
    return [...this.open];
  }

  async close(): Promise<void> {
    this.open.length = 0;
    await this.queue;
    await this.command('DELETE', '');
  }
}
