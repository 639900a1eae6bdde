import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createWorker, type types } from 'mediasoup';
import { h264Producer } from '../bench/lib/call.js';
import { MEDIA_CODECS } from '../src/sfu/rooms.js';
import { analysisPicture } from '../src/sfu/layers.js';

describe('which simulcast layer the analysis decodes (real mediasoup producers)', () => {
  let worker: types.Worker;
  let transport: types.PlainTransport;
  before(async () => {
    worker = await createWorker({ logLevel: 'error' });
    const router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
    transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, comedia: true, rtcpMux: false });
  });
  after(() => worker.close());

  const produce = (ssrcs: number[], appData: Record<string, unknown>): Promise<types.Producer> => {
    const p = h264Producer(ssrcs.at(-1)!);
    p.rtpParameters.encodings = ssrcs.map((ssrc) => ({ ssrc }));
    return transport.produce({ ...p, appData } as types.ProducerOptions);
  };

  it('a simulcast producer: the low layer, decoded at its own size (never scaled up)', async () => {
    const p = await produce([10, 11], { width: 1280, height: 720 });
    assert.equal(p.type, 'simulcast');
    assert.deepEqual(analysisPicture(p, 640, 'low'), { layer: 'low', preferredLayers: { spatialLayer: 0 }, width: 640, height: 360 });
    // a page that says its low layer is a quarter of the full one
    const q = await produce([12, 13], { width: 1280, height: 720, lowScale: 4 });
    assert.deepEqual(analysisPicture(q, 640, 'low'), { layer: 'low', preferredLayers: { spatialLayer: 0 }, width: 320, height: 180 });
  });

  it('the full layer when the producer (the kiosk) or the config asks for it', async () => {
    const p = await produce([20, 21, 22], { width: 640, height: 480, layer: 'high' });
    assert.deepEqual(analysisPicture(p, 640, 'low'), { layer: 'high', preferredLayers: { spatialLayer: 2 }, width: 640, height: 480 });
    const q = await produce([23, 24], { width: 640, height: 480 });
    assert.equal(analysisPicture(q, 640, 'high').layer, 'high');
  });

  it('one encoding: no layer to choose; nonsense sizes fall back to 640x480', async () => {
    const p = await produce([30], { width: 'wide', height: -3, lowScale: Number.NaN });
    assert.deepEqual(analysisPicture(p, 320, 'low'), { layer: null, width: 320, height: 240 });
    const q = await produce([31, 32], { lowScale: Number.POSITIVE_INFINITY });
    const r = analysisPicture(q, 640, 'low');
    assert.ok(r.width >= 2 && r.height >= 2, 'an absurd scale still gives a picture a decoder accepts');
  });
});
