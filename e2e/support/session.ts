// The seam between the specs and the automation library that drives a
// browser: a `Session` (one launched browser on one profile) and its `Tab`s.
// Playwright drives Chromium; it cannot drive Debian's firefox-esr or
// WebKitGTK's MiniBrowser, so those are driven over WebDriver BiDi
// (puppeteer-core, support/firefox.ts) and classic WebDriver
// (WebKitWebDriver, support/webkit.ts). A spec that runs in every engine uses
// only what is here; Chromium-only specs keep using Playwright's objects.
import type { BrowserContext, Page } from '@playwright/test';

/** The engine a Playwright project runs (playwright.config.ts sets it per project). */
export type Engine = 'chromium' | 'firefox' | 'webkit';

export interface Tab {
  /** Navigates to an absolute URL and waits for its load event. */
  goto(url: string): Promise<void>;
  reload(): Promise<void>;
  /**
   * Runs `fn(arg)` in the page and resolves with its (awaited) result. `fn` is
   * sent as source text: it must not close over anything; `arg` and the result
   * must be JSON-like.
   */
  evaluate<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
  /** Calls `listener` with the text of every console message of the page. */
  onConsole(listener: (text: string) => void): void;
  screenshot(path: string): Promise<void>;
  url(): Promise<string>;
  close(): Promise<void>;
  /** The Playwright page behind this tab (Chromium only), for Chromium-only checks. */
  readonly page?: Page;
}

export interface Session {
  readonly engine: Engine;
  /** A tab on about:blank: the one the browser opened, if still unused, else a new one. */
  newTab(): Promise<Tab>;
  /** The tabs still open. */
  tabs(): Tab[];
  /** Closes the browser (waiting for it: profile data is flushed as on a normal quit). */
  close(): Promise<void>;
  /** The Playwright context behind this session (Chromium only), e.g. for CDP. */
  readonly context?: BrowserContext;
}

/** A Playwright page as a Tab. */
export class PlaywrightTab implements Tab {
  constructor(readonly page: Page) {}
  async goto(url: string): Promise<void> {
    await this.page.goto(url);
  }
  async reload(): Promise<void> {
    await this.page.reload();
  }
  evaluate<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R> {
    return this.page.evaluate(fn as (arg: unknown) => Promise<R>, arg as unknown);
  }
  onConsole(listener: (text: string) => void): void {
    this.page.on('console', (message) => listener(message.text()));
  }
  async screenshot(path: string): Promise<void> {
    await this.page.screenshot({ path, fullPage: true });
  }
  async url(): Promise<string> {
    return this.page.url();
  }
  async close(): Promise<void> {
    await this.page.close();
  }
}

/** A Playwright persistent context (Chromium) as a Session. */
export class PlaywrightSession implements Session {
  readonly engine = 'chromium' as const;
  constructor(readonly context: BrowserContext) {}
  async newTab(): Promise<Tab> {
    const blank = this.context.pages().find((p) => p.url() === 'about:blank');
    return new PlaywrightTab(blank ?? (await this.context.newPage()));
  }
  tabs(): Tab[] {
    return this.context.pages().map((p) => new PlaywrightTab(p));
  }
  async close(): Promise<void> {
    await this.context.close();
  }
}
