import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from '../src/paths.js';
import { cachedClip, VIDEOS } from './helpers.js';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** A real face clip as a y4m file, which Chromium's fake camera plays in a loop. */
export function y4mClip(name = 'd18', width = 480, height = 480): string {
  // prettier-ignore
  return cachedClip(`${name}-${width}x${height}.y4m`, [
    '-i', join(VIDEOS, `${name}.mp4`), '-an', '-vf', `scale=${width}:${height}`, '-pix_fmt', 'yuv420p', '-f', 'yuv4mpegpipe',
  ]);
}

/**
 * Debian's Chromium, headless, with a clip as its camera. Never a downloaded browser.
 * The profile folder is removed and the browser killed however the test ends.
 */
export async function launchChromium(camera: string): Promise<{ browser: Browser; close: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'arpgnet-chromium-'));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream=fps=25',
      `--use-file-for-fake-video-capture=${camera}`,
      // background tabs would otherwise be throttled and stop sending video
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
    ],
    env: { ...process.env, HOME: profile },
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A screenshot of a page as the test left it: into docs/screenshots (the README's) when
 * UPDATE_SCREENSHOTS=1, else into the system's temporary folder, so a test run leaves
 * the checkout as it was.
 */
export async function screenshot(page: Page, name: string): Promise<string> {
  const dir = process.env['UPDATE_SCREENSHOTS'] === '1' ? join(ROOT, 'docs', 'screenshots') : join(tmpdir(), 'arpgnet-screenshots');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.jpg`);
  await page.screenshot({ path: file, type: 'jpeg', quality: 70 });
  return file;
}
