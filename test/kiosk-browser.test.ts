import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../src/log.js';
import { serve, type Serving } from '../src/roles/serve.js';
import { launchChromium, screenshot, y4mClip } from './browser.js';
import { until } from './call.js';
import { cachedClip, serveTestConfig } from './helpers.js';

/** A camera with nobody in front of it: a test pattern. */
const emptyCamera = (): string =>
  cachedClip('empty-640x480.y4m', [
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=640x480:rate=25:duration=4',
    '-pix_fmt',
    'yuv420p',
    '-f',
    'yuv4mpegpipe',
  ]);

describe('kiosk page in headless Chromium with a camera source', () => {
  let s: Serving;
  before(async () => {
    s = await serve(serveTestConfig(), silentLogger);
  });
  after(async () => {
    await s?.close();
  });

  it('shows the face in front of the camera with a large label, the privacy notice, and an off switch that stops the analysis', async () => {
    const chrome = await launchChromium(y4mClip());
    try {
      const page = await (await chrome.browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
      await page.goto(`${s.url}/kiosk?room=kiosk-test`);
      await page.waitForSelector('body[data-state="running"]', { timeout: 30_000 });
      await page.waitForSelector('body[data-presence="present"]', { timeout: 60_000 });
      const big = (await page.locator('#big-label').textContent()) ?? '';
      assert.match(big, /^(anger|disgust|fear|happiness|sadness|surprise|neutral|uncertain)$/);
      assert.ok(await page.locator('#big').isVisible(), 'the large label is on screen');
      assert.ok(!(await page.locator('#idle').isVisible()), 'no idle screen while someone is in front');
      assert.ok(await page.locator('#privacy').isVisible(), 'the privacy notice is visible');
      const fontPx = await page.locator('#big').evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
      assert.ok(fontPx >= 48, `the label is large (${fontPx}px)`);
      assert.match(await page.evaluate(() => document.body.dataset['away'] ?? ''), /^(true|false)$/, 'attention is shown');
      await screenshot(page, 'kiosk');
      assert.equal(s.analyser!.streams().length, 1);

      await page.click('#off');
      await page.waitForSelector('body[data-analysis="off"]');
      await until(() => s.analyser!.streams().length === 0, 10_000, 'the analysis to stop');
      assert.ok(await page.locator('#off-screen').isVisible());
      await page.click('#off');
      await until(() => s.analyser!.streams().length === 1, 10_000, 'the analysis to start again');
    } finally {
      await chrome.close();
    }
  });

  it('shows the idle screen when nobody is in front of the camera', async () => {
    const chrome = await launchChromium(emptyCamera());
    try {
      const page = await (await chrome.browser.newContext({ viewport: { width: 1280, height: 720 } })).newPage();
      await page.goto(`${s.url}/kiosk?room=kiosk-empty&idleMs=1500`);
      await page.waitForSelector('body[data-state="running"]', { timeout: 30_000 });
      await until(() => s.analyser!.streams().some((x) => x.analysed > 20), 30_000, 'frames analysed');
      assert.equal(await page.evaluate(() => document.body.dataset['presence']), 'idle');
      assert.ok(await page.locator('#idle').isVisible());
      assert.ok(!(await page.locator('#big').isVisible()));
    } finally {
      await chrome.close();
    }
  });
});
