// A browser we can kill: launched on a profile directory in its own process
// group, so a test can end it the hard way — SIGKILL of the whole browser, a
// crash of the process that renders the page, or a close it does not wait
// for — and launch it again on the same profile.
//  - Chromium: spawned by hand and driven over CDP (a Playwright persistent
//    context hides the browser's process);
//  - Firefox: firefox-esr launched by puppeteer-core (support/firefox.ts),
//    which spawns it detached; its content processes render the pages.
// (WebKitGTK has none of this: its automation session keeps no storage to
// recover, see playwright.config.ts.)
import { chromium, type Browser, type BrowserContext } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS } from './fixtures';
import { FirefoxSession } from './firefox';
import { PlaywrightTab, type Engine, type Tab } from './session';

/** 'renderer-crash': Chromium's Page.crash; 'content-crash': SIGKILL of Firefox's content processes. */
export type KillMode = 'sigkill' | 'renderer-crash' | 'content-crash' | 'close-no-wait';

/** A crashable browser of any engine, with the one tab it opened. */
export interface Crashable {
  readonly tab: Tab;
  kill(mode: KillMode): Promise<void>;
}

/** How each engine can be ended. */
export const KILL_MODES: Partial<Record<Engine, KillMode[]>> = {
  chromium: ['sigkill', 'renderer-crash', 'close-no-wait'],
  firefox: ['sigkill', 'content-crash', 'close-no-wait'],
};

/** The folders of a profile where the engine keeps IndexedDB and OPFS. */
export function storageFolders(engine: Engine, profile: string): string[] {
  if (engine === 'firefox') return [join(profile, 'storage')]; // storage/default/<origin>/{idb,fs}
  return [join(profile, 'Default', 'IndexedDB'), join(profile, 'Default', 'File System')];
}

export async function launchCrashable(engine: Engine, profile: string): Promise<Crashable> {
  if (engine === 'firefox') return CrashableFirefox.launch(profile);
  if (engine === 'chromium') {
    const browser = await CrashableBrowser.launch(profile);
    const page = browser.context.pages()[0] ?? (await browser.context.newPage());
    return { tab: new PlaywrightTab(page), kill: (mode) => browser.kill(mode) };
  }
  throw new Error(`no crashable ${engine}`);
}

export class CrashableBrowser {
  private constructor(
    readonly process: ChildProcess,
    readonly browser: Browser,
    readonly context: BrowserContext,
    private readonly exited: Promise<void>,
  ) {}

  static async launch(profile: string): Promise<CrashableBrowser> {
    const proc = spawn(
      CHROMIUM,
      ['--headless', '--remote-debugging-port=0', `--user-data-dir=${profile}`, ...CHROMIUM_ARGS, 'about:blank'],
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    );
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const endpoint = await new Promise<string>((resolve, reject) => {
      let stderr = '';
      const timer = setTimeout(() => reject(new Error(`chromium did not start: ${stderr}`)), 20_000);
      proc.stderr!.on('data', (chunk) => {
        stderr += chunk;
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`chromium exited (${code ?? signal}) before listening: ${stderr}`));
      });
    });
    proc.stderr!.resume(); // keep draining
    const browser = await chromium.connectOverCDP(endpoint);
    return new CrashableBrowser(proc, browser, browser.contexts()[0]!, exited);
  }

  /** Ends the browser the way `mode` says, without waiting for anything of the page; resolves once every process is gone. */
  async kill(mode: KillMode): Promise<void> {
    const pid = this.process.pid!;
    if (mode === 'sigkill') {
      process.kill(-pid, 'SIGKILL');
    } else if (mode === 'renderer-crash') {
      const page = this.context.pages()[0]!;
      const session = await this.context.newCDPSession(page);
      session.send('Page.crash').catch(() => undefined); // never answers: the renderer is gone
      await page.waitForEvent('crash', { timeout: 5000 }).catch(() => undefined);
      (await this.browser.newBrowserCDPSession()).send('Browser.close').catch(() => undefined);
    } else {
      (await this.browser.newBrowserCDPSession()).send('Browser.close').catch(() => undefined);
    }
    await reapGroup(pid, this.exited, 'chromium');
    await this.browser.close().catch(() => undefined);
  }
}

/** firefox-esr on a profile, killable; its pages are rendered by content processes of its group. */
class CrashableFirefox implements Crashable {
  private constructor(
    private readonly session: FirefoxSession,
    readonly tab: Tab,
  ) {}

  static async launch(profile: string): Promise<CrashableFirefox> {
    const session = await FirefoxSession.launch(profile);
    return new CrashableFirefox(session, await session.newTab());
  }

  async kill(mode: KillMode): Promise<void> {
    const pid = this.session.pid;
    if (mode === 'sigkill') {
      process.kill(-pid, 'SIGKILL');
    } else if (mode === 'content-crash') {
      // The processes that render web pages (`-contentproc ... -isForBrowser`),
      // as when a tab crashes; then a quit nobody waits for, as Chromium's mode does.
      for (const member of liveGroupMembers(pid)) {
        if (commandLine(member).includes('-isForBrowser')) process.kill(member, 'SIGKILL');
      }
      this.session.requestQuit();
    } else if (mode === 'close-no-wait') {
      this.session.requestQuit();
    } else {
      throw new Error(`firefox has no kill mode ${mode}`);
    }
    await reapGroup(pid, this.session.exited, 'firefox');
    await this.session.browser.close().catch(() => undefined); // drops the connection
  }
}

/**
 * Waits (15 s) for the browser's main process `pid` to exit, SIGKILLs it if it
 * has not, then kills and waits out every process of its group. Helpers
 * (renderer, storage service, content processes) share the group: none may
 * outlive the browser. One still inside a write (an fsync of a strict-durability
 * commit) can take a while to die; the next launch on this profile must not
 * race it for the profile's storage files.
 */
async function reapGroup(pid: number, exited: Promise<void>, what: string): Promise<void> {
  const gone = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
  if (!gone) {
    process.kill(-pid, 'SIGKILL');
    await exited;
  }
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is already empty
  }
  const deadline = Date.now() + 15_000;
  while (liveGroupMembers(pid).length > 0) {
    if (Date.now() > deadline) {
      throw new Error(`${what} helpers of process group ${pid} still alive 15 s after SIGKILL: ${liveGroupMembers(pid).join(', ')}`);
    }
    await sleep(20);
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return ''; // exited while we looked
  }
}

/** Processes of group `pgid` that have not exited (zombies, which hold no files, excluded). */
function liveGroupMembers(pgid: number): number[] {
  const live: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so parse after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') live.push(Number(entry));
  }
  return live;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
