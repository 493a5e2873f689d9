import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestServer, type TestServer } from '../testing/test-server.js';

/** Debian's chromium; `SKIPGEN_CHROMIUM` points elsewhere. */
const CHROMIUM = process.env.SKIPGEN_CHROMIUM ?? '/usr/bin/chromium';
/** The screenshot the README shows; rewritten when missing or with `SKIPGEN_UPDATE_SCREENSHOT=1`. */
const SCREENSHOT = fileURLToPath(new URL('../../docs/playground.png', import.meta.url));

/** The bold value of a stat in a stats footer. */
const stat = (page: Page, footer: string, name: string) => page.locator(`${footer} [data-stat="${name}"] b`);

describe('the playground in a browser', () => {
  let test: TestServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`the playground test drives Chromium at ${CHROMIUM}, which is missing: apt-get install -y chromium, or set SKIPGEN_CHROMIUM to a Chromium binary`);
    }
    // The shipped model, so the page shows real text.
    test = await startTestServer({ maxBatch: 2, skip: { policy: 'unified', speedup: 2 } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1100, height: 860 }, deviceScaleFactor: 1 });
    page.on('pageerror', (error) => {
      throw error;
    });
    await page.goto(`${test.url}/`);
  });
  afterAll(async () => {
    await browser?.close();
    await test?.server.close();
  });

  it('shows the served model and the server default policy', async () => {
    await expect.poll(() => page.locator('#model-info').textContent()).toContain('tiny-shakespeare · 12 layers · cpu');
    await expect.poll(() => page.locator('#policy').inputValue()).toBe('unified');
    expect(await page.locator('#policy option').allTextContents()).toEqual(['full', 'unified', 'skipdecode', 'early-exit', 'slow', 'explode']);
  });

  it('streams a completion with live tokens/s and the layers per token it ran', async () => {
    expect(await page.locator('#speedup').inputValue()).toBe('2');
    await page.locator('#prompt').fill('ROMEO:\n');
    await page.locator('#max-tokens').fill('80');
    // Count how often the output changes: streamed text arrives in many pieces.
    await page.evaluate(`
      window.updates = 0;
      new MutationObserver(() => window.updates++).observe(document.getElementById('output'), { childList: true, characterData: true, subtree: true });
    `);
    await page.locator('#generate').click();
    await expect.poll(() => stat(page, '#stats', 'finish').textContent(), { timeout: 30_000 }).toMatch(/^(length|stop)$/);
    expect((await page.locator('#output').textContent())!.trim().length).toBeGreaterThan(20);
    expect(await page.evaluate('window.updates')).toBeGreaterThan(5);
    expect(await stat(page, '#stats', 'tokens-per-second').textContent()).toMatch(/^\d+(\.\d)?$/);
    expect(await stat(page, '#stats', 'layers-per-token').textContent()).toBe('6.00 / 12');
    expect(await stat(page, '#stats', 'policy').textContent()).toBe('unified (speedup 2)');
    expect(Number(await stat(page, '#stats', 'tokens').textContent())).toBeGreaterThan(1);
  });

  it('says why the shipped model cannot chat', async () => {
    await page.locator('button[data-mode="chat"]').click();
    expect(await page.locator('#complete-panel').isVisible()).toBe(false);
    await expect.poll(() => page.locator('#chat-notice').textContent()).toContain('has no chat template');
    expect(await page.locator('#chat-form button[type="submit"]').isDisabled()).toBe(true);
  });

  it('races full depth against unified skipping side by side', async () => {
    await page.locator('button[data-mode="race"]').click();
    expect(await page.locator('#race-panel').isVisible()).toBe(true);
    for (const panel of ['#complete-panel', '#chat-panel']) expect(await page.locator(panel).isVisible()).toBe(false);
    await page.locator('#race-prompt').fill('JULIET:\n');
    await page.locator('#speedup').fill('2');
    await page.locator('#max-tokens').fill('120');
    await page.locator('#race').click();
    await expect.poll(() => page.locator('#race-result').textContent(), { timeout: 30_000 }).toMatch(/^unified 2x decodes \d+\.\d\dx as fast as full depth \(6\.0 of 12 layers per token\)$/);
    for (const column of ['#race-full', '#race-unified']) {
      expect((await page.locator(`${column} .race-text`).textContent())!.trim().length).toBeGreaterThan(20);
      expect(await stat(page, `${column} .stats`, 'tokens-per-second').textContent()).toMatch(/^\d+(\.\d)?$/);
    }
    expect(await stat(page, '#race-full .stats', 'layers-per-token').textContent()).toBe('12.00 / 12');
    expect(await stat(page, '#race-unified .stats', 'layers-per-token').textContent()).toBe('6.00 / 12');

    console.log(`playground race: ${await page.locator('#race-result').textContent()}`);
    const shot = join(tmpdir(), `skipgen-playground-${process.pid}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    if (!existsSync(SCREENSHOT) || process.env.SKIPGEN_UPDATE_SCREENSHOT === '1') {
      await mkdir(dirname(SCREENSHOT), { recursive: true });
      await copyFile(shot, SCREENSHOT);
    }
  });
});
