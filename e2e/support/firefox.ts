// Debian's firefox-esr as a Session, driven over WebDriver BiDi by
// puppeteer-core (Playwright's Firefox is a patched build that cannot be
// installed here; firefox-esr speaks BiDi natively, no geckodriver needed).
// The browser runs on a profile directory of ours, so IndexedDB and OPFS live
// on disk under `<profile>/storage/default/<origin>/` and outlive a relaunch.
import type { Browser, Page } from 'puppeteer-core';
import type { Session, Tab } from './session';

export const FIREFOX = '/usr/bin/firefox-esr';

/** Prefs on top of puppeteer's own (which already turn off updates, telemetry and first-run pages). */
const PREFS = {
  // A relaunch after a kill must open no restored tabs or crash pages of its own.
  'browser.sessionstore.resume_from_crash': false,
  'browser.sessionstore.max_resumed_crashes': 0,
  'toolkit.startup.max_resumed_crashes': -1,
  'browser.shell.checkDefaultBrowser': false,
};

class PuppeteerTab implements Tab {
  constructor(readonly puppeteerPage: Page, private readonly forget: (tab: PuppeteerTab) => void) {}
  async goto(url: string): Promise<void> {
    await this.puppeteerPage.goto(url, { waitUntil: 'load' });
  }
  async reload(): Promise<void> {
    await this.puppeteerPage.reload({ waitUntil: 'load' });
  }
  evaluate<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R> {
    return this.puppeteerPage.evaluate(fn as (arg: A) => Promise<R>, arg as never) as Promise<R>;
  }
  onConsole(listener: (text: string) => void): void {
    this.puppeteerPage.on('console', (message) => listener(message.text()));
  }
  async screenshot(path: string): Promise<void> {
    await this.puppeteerPage.screenshot({ path, fullPage: true });
  }
  async url(): Promise<string> {
    return this.puppeteerPage.url();
  }
  async close(): Promise<void> {
    this.forget(this);
    await this.puppeteerPage.close();
  }
}

export class FirefoxSession implements Session {
  readonly engine = 'firefox' as const;
  private readonly open = new Set<PuppeteerTab>();
  private blank: Page | undefined;

  private constructor(
    readonly browser: Browser,
    /** Resolves once the browser's main process has exited. */
    readonly exited: Promise<void>,
  ) {}

  /** Launches firefox-esr headless on `profile` (created by the caller, may hold an earlier session's data). */
  static async launch(profile: string): Promise<FirefoxSession> {
    // An ES module: imported dynamically, since Playwright compiles the specs to CommonJS.
    const { default: puppeteer } = await import('puppeteer-core');
    const browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: true,
      userDataDir: profile,
      extraPrefsFirefox: PREFS,
      defaultViewport: { width: 1000, height: 700 },
      // The test ends the browser itself (session.close(), or a kill in the crash test).
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    const proc = browser.process()!;
    const exited = new Promise<void>((resolve) => (proc.exitCode !== null || proc.signalCode !== null ? resolve() : proc.once('exit', () => resolve())));
    const session = new FirefoxSession(browser, exited);
    session.blank = (await browser.pages()).find((p) => p.url() === 'about:blank');
    return session;
  }

  /** The browser's main process (its own process group: puppeteer spawns it detached). */
  get pid(): number {
    return this.browser.process()!.pid!;
  }

  async newTab(): Promise<Tab> {
    const page = this.blank ?? (await this.browser.newPage());
    this.blank = undefined;
    const tab = new PuppeteerTab(page, (t) => this.open.delete(t));
    this.open.add(tab);
    return tab;
  }

  tabs(): Tab[] {
    return [...this.open];
  }

  /**
   * Asks the browser to quit (BiDi `browser.close`) without waiting for anything.
   * (puppeteer's own close() SIGKILLs the process group as soon as the command is
   * answered: no time to shut down as a user's quit does.)
   */
  requestQuit(): void {
    // The BiDi connection of a puppeteer Browser launched for Firefox (not in its public types).
    const { connection } = this.browser as unknown as { connection: { send(method: string, params: object): Promise<unknown> } };
    connection.send('browser.close', {}).catch(() => undefined);
  }

  /**
   * Quits the browser as a user would and waits until every process of it has exited (30 s,
   * then it is killed). The main process exiting is not enough: its child processes (its
   * own process group) can still be winding down and writing into the profile, and a
   * profile removed then failed with ENOTEMPTY (seen once in .ci/run, the relaunch test).
   */
  async close(): Promise<void> {
    this.open.clear();
    this.requestQuit();
    const deadline = Date.now() + 30_000;
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 30_000))]);
    while (groupAlive(this.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await this.browser.close().catch(() => undefined); // kills what is left, drops the connection
  }
}

/** Whether any process of the process group `pgid` is still running. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false; // ESRCH: none left
  }
}
