// A Chromium we can kill: spawned by hand on a profile directory (its own
// process group) and driven over CDP, so a test can end it the hard way —
// SIGKILL of the whole browser, a renderer crash, or a close it does not wait
// for — and launch it again on the same profile. (A Playwright persistent
// context hides the browser's process.)
import { chromium, type Browser, type BrowserContext } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { CHROMIUM, CHROMIUM_ARGS } from './fixtures';

export type KillMode = 'sigkill' | 'renderer-crash' | 'close-no-wait';

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
    const gone = await Promise.race([this.exited.then(() => true), sleep(15_000).then(() => false)]);
    if (!gone) {
      process.kill(-pid, 'SIGKILL');
      await this.exited;
    }
    // Helpers (renderer, storage service) share the process group: make sure
    // none outlives the browser. A helper still inside a write (an fsync of a
    // strict-durability commit) can take a while to die; the next launch on
    // this profile must not race it for the profile's storage files.
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // the group is already empty
    }
    const deadline = Date.now() + 15_000;
    while (liveGroupMembers(pid).length > 0) {
      if (Date.now() > deadline) {
        throw new Error(`chromium helpers of process group ${pid} still alive 15 s after SIGKILL: ${liveGroupMembers(pid).join(', ')}`);
      }
      await sleep(20);
    }
    await this.browser.close().catch(() => undefined);
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
