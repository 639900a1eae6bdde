import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../src/log.js';
import type { EmotionEvent } from '../src/publish/events.js';
import { serve, type Serving } from '../src/roles/serve.js';
import { launchChromium, screenshot, y4mClip } from './browser.js';
import { subscribeEvents, until } from './call.js';
import { assertSchema, processes, serveTestConfig } from './helpers.js';

const decoders = (): number => processes('arpgnet-rtp-').length;

describe('serve: the overlay page in a real browser (headless Debian Chromium, a face clip as camera)', () => {
  let s: Serving;
  let chrome: Awaited<ReturnType<typeof launchChromium>>;
  before(async () => {
    s = await serve(serveTestConfig(), silentLogger);
    chrome = await launchChromium(y4mClip());
  });
  after(async () => {
    await chrome?.close();
    await s?.close();
  });

  it("a consenting participant's emotions reach a WebSocket subscriber and the other participant's page; a non-consenting one is never decoded", async () => {
    const sub = await subscribeEvents(s.url, '?room=browser');
    const alice = await (await chrome.browser.newContext()).newPage();
    const bob = await (await chrome.browser.newContext()).newPage();
    const logs: string[] = [];
    for (const p of [alice, bob]) p.on('console', (m) => logs.push(m.text()));
    try {
      // the notice is there before anything is analysed (AI Act Art. 50(3)); consent is off until ticked
      await bob.goto(`${s.url}/?room=browser&name=bob`);
      assert.ok(await bob.locator('#notice').isVisible(), 'the emotion-recognition notice is shown before joining');
      assert.match((await bob.locator('#notice').textContent()) ?? '', /emotion recognition/);
      assert.equal(await bob.locator('#consent').isChecked(), false, 'analysis is opt-in');
      await alice.goto(`${s.url}/?room=browser&name=alice&autostart=1&consent=1`);
      await alice.waitForSelector('body[data-state="joined"]', { timeout: 30_000 });
      const aliceProducer = await alice.evaluate(() => document.body.dataset['producer']!);
      await bob.goto(`${s.url}/?room=browser&name=bob&autostart=1`);
      await bob.waitForSelector('body[data-state="joined"]', { timeout: 30_000 });
      const bobProducer = await bob.evaluate(() => document.body.dataset['producer']!);
      assert.notEqual(aliceProducer, bobProducer);

      await until(() => sub.got.some((e) => e.stream === aliceProducer && e.type === 'emotion'), 60_000, "alice's emotion events");
      const emo = sub.got.find((e): e is EmotionEvent => e.stream === aliceProducer && e.type === 'emotion')!;
      assertSchema(emo);
      assert.equal(emo.room, 'browser');
      // her page publishes simulcast and the analysis decodes the half-size layer
      assert.equal(s.sfu!.placement.streams().find((x) => x.producerId === aliceProducer)?.layer, 'low');
      const start = sub.got.find((e) => e.stream === aliceProducer && e.type === 'stream_start');
      assert.ok(start?.type === 'stream_start' && start.source.width <= 320, `decoded at ${JSON.stringify(start)}`);

      // bob's page shows alice's label on her tile, anchored over her video
      const label = bob.locator(`.tile[data-producer="${aliceProducer}"] .face .label`).first();
      await label.waitFor({ timeout: 30_000 });
      const text = (await label.textContent()) ?? '';
      assert.match(text, /^((anger|disgust|fear|happiness|sadness|surprise|neutral) \d+%( → \w+)?|uncertain)$/);
      const box = await bob.locator(`.tile[data-producer="${aliceProducer}"] .face`).first().boundingBox();
      const video = await bob.locator(`.tile[data-producer="${aliceProducer}"] video`).boundingBox();
      assert.ok(
        box && video && box.width > 20 && box.x >= video.x - 1 && box.x + box.width <= video.x + video.width + 1,
        'the face box lies over the video',
      );
      assert.equal(await bob.locator(`.tile[data-producer="${aliceProducer}"]`).getAttribute('data-analysed'), 'true');
      // the label never contradicts the bars beside it: it is the top bar, or it says that it is changing to it
      const face = bob.locator(`.tile[data-producer="${aliceProducer}"] .face`).first();
      let agreed = 0;
      for (let i = 0; i < 30; i++) {
        const seen = await face.evaluate((el) => ({
          label: el.querySelector('.label')?.textContent ?? '',
          changing: el.getAttribute('data-changing'),
          top: el.querySelector('.bar span')?.textContent ?? '',
          shown: el.querySelector('.bar.shown span')?.textContent ?? null,
          dot: (el.querySelector('.va i') as HTMLElement | null)?.style.left ?? '',
        }));
        if (seen.label !== 'uncertain') {
          if (seen.changing === 'true') assert.ok(seen.label.endsWith(`→ ${seen.top}`), JSON.stringify(seen));
          else {
            assert.ok(seen.label.startsWith(`${seen.top} `), `shown label is not the top bar: ${JSON.stringify(seen)}`);
            assert.equal(seen.shown, seen.top);
          }
          agreed++;
        }
        assert.match(seen.dot, /^\d+%$/, 'the valence/arousal meter is placed');
        await new Promise((r) => setTimeout(r, 300));
      }
      assert.ok(agreed > 0, 'some labels were read');
      await screenshot(bob, 'overlay');
      // alice sees her own label too
      await alice.locator(`.tile[data-producer="${aliceProducer}"] .face .label`).first().waitFor({ timeout: 30_000 });

      // bob did not consent: no analysis, no decoder, no events, and his tile says so
      assert.equal(s.sfu!.placement.isAnalysed(bobProducer), false);
      assert.equal(s.sfu!.placement.counters.started, 1);
      assert.equal(decoders(), 1, "only alice's video is decoded");
      assert.equal(sub.got.filter((e) => e.stream === bobProducer).length, 0);
      assert.equal(await alice.locator(`.tile[data-producer="${bobProducer}"]`).getAttribute('data-analysed'), 'false');
      assert.equal(await alice.locator(`.tile[data-producer="${bobProducer}"] .face`).count(), 0);
      // the pages live within their Content-Security-Policy: no script, style or connection refused
      assert.deepEqual(
        logs.filter((l) => /Content Security Policy/i.test(l)),
        [],
      );
      const res = await fetch(`${s.url}/`);
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
    } catch (e) {
      process.stderr.write(`browser console:\n${logs.slice(-20).join('\n')}\n`);
      throw e;
    } finally {
      sub.ws.close();
    }
  });
});
