// Driving the page in Debian's Chromium (headless, WebGPU on SwiftShader when no GPU) like a user: drop files,
// click, download.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

export const launchChromium = (): Promise<Browser> =>
  puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--enable-unsafe-webgpu'] });

/**
 * The page in a fresh browser context (its own Cache Storage), with downloads going to a temporary folder;
 * `beforeVisit` may attach listeners first.
 */
export interface Tab {
  readonly page: Page;
  readonly context: BrowserContext;
  /** Where the browser saves downloads. */
  readonly downloads: string;
  /** Uncaught errors of the page. */
  readonly errors: string[];
  close(): Promise<void>;
}

export async function openPage(browser: Browser, url: string, beforeVisit?: (page: Page) => void): Promise<Tab> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String((e as Error)?.message ?? e)));
  const downloads = await mkdtemp(join(tmpdir(), 'codiff-web-downloads-'));
  const session = await page.createCDPSession();
  await session.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads, browserContextId: context.id, eventsEnabled: true });
  beforeVisit?.(page);
  await page.goto(url);
  return { page, context, downloads, errors, close: async () => (await context.close(), await rm(downloads, { recursive: true, force: true })) };
}

/** The page opened as by openPage with its model loaded ('ready'); `use` runs in it, and the tab is closed after. */
export async function withReadyPage(browser: Browser, url: string, use: (tab: Tab) => Promise<void>): Promise<void> {
  const tab = await openPage(browser, url);
  try {
    if ((await waitForState(tab.page, ['ready', 'failed'], 120_000)) !== 'ready') throw new Error(`the page did not load its model: ${await text(tab.page, '#error')}`);
    await use(tab);
  } finally {
    await tab.close();
  }
}

/** Wait until `document.body.dataset.state` is one of `states`, and return it. */
export async function waitForState(page: Page, states: readonly string[], timeoutMs: number): Promise<string> {
  await page.waitForFunction((s: readonly string[]) => s.includes(document.body.dataset.state ?? ''), { timeout: timeoutMs, polling: 200 }, states);
  return page.evaluate(() => document.body.dataset.state ?? '');
}

/** Drop a file onto an element as a user dragging it from the desktop would. */
export async function dropFile(page: Page, selector: string, name: string, bytes: Uint8Array, type: string): Promise<void> {
  await page.evaluate(
    (selector: string, name: string, b64: string, type: string) => {
      const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([data], name, { type }));
      document.querySelector(selector)!.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    },
    selector,
    name,
    Buffer.from(bytes).toString('base64'),
    type,
  );
}

/** Click a download link and return the bytes of the file the browser saved. */
export async function download(page: Page, selector: string, folder: string, timeoutMs = 30_000): Promise<{ name: string; bytes: Uint8Array }> {
  const before = new Set(await readdir(folder));
  await page.click(selector);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const done = (await readdir(folder)).filter((f) => !before.has(f) && !f.endsWith('.crdownload'));
    if (done.length > 0) return { name: done[0], bytes: new Uint8Array(await readFile(join(folder, done[0]))) };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no download from ${selector} within ${timeoutMs} ms`);
}

/** The bytes a link points at (a blob: URL), read in the page: for a second file, which Chromium's multiple-download guard would hold back. */
export async function linkBytes(page: Page, selector: string): Promise<Uint8Array> {
  const b64 = await page.$eval(selector, async (a) => {
    const bytes = new Uint8Array(await (await fetch((a as HTMLAnchorElement).href)).arrayBuffer());
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  });
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

export const text = (page: Page, selector: string): Promise<string> => page.$eval(selector, (e) => e.textContent ?? '');
export const dataset = (page: Page): Promise<Record<string, string | undefined>> => page.evaluate(() => ({ ...document.body.dataset }));
