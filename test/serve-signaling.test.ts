import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../src/log.js';
import { securityHeaders } from '../src/host/headers.js';
import { serve, type Serving } from '../src/roles/serve.js';
import { staticFiles } from '../src/host/static.js';
import { analysedSender, h264Producer, TestPeer, until } from './call.js';
import { serveTestConfig } from './helpers.js';

describe('serve: bad signaling input gets a clear error reply and disturbs nothing else', () => {
  let s: Serving;
  let sender: ChildProcess | null = null;
  before(async () => {
    s = await serve(serveTestConfig(), silentLogger);
  });
  after(async () => {
    sender?.kill('SIGKILL');
    await s.close();
  });

  it('malformed, oversized, unknown, out-of-order and unsupported requests while another stream is analysed', async () => {
    // a healthy analysed stream in the same room, watched throughout
    const healthy = await analysedSender(s.url, 'r1', 4242);
    const { sub, producerId: goodProducer, peer: good } = healthy;
    sender = healthy.sender;

    const bad = await TestPeer.open(s.url);
    bad.ws.send('{not json');
    assert.deepEqual((await bad.nextStray()).error, { code: 'bad_request', message: 'not valid JSON' });
    bad.ws.send(JSON.stringify({ id: 1, method: 'join', data: { room: 'r1', name: 'x'.repeat(70_000) } }));
    assert.equal((await bad.nextStray()).error?.code, 'too_large');
    bad.ws.send(JSON.stringify({ method: 'join' }));
    assert.match((await bad.nextStray()).error?.message ?? '', /expected \{"id"/);

    const err = async (method: string, data: unknown) => (await bad.call(method, data)).error;
    assert.deepEqual(await err('fly', {}), { code: 'bad_request', message: 'unknown method "fly"' });
    assert.equal((await err('consume', { transportId: 'x', producerId: goodProducer, rtpCapabilities: {} }))?.code, 'not_joined');
    const noRoom = await err('join', { name: 'x' });
    assert.equal(noRoom?.code, 'bad_request');
    assert.equal(noRoom?.message, 'join: room: Invalid input: expected string, missing');
    assert.match((await err('join', { room: '../etc', name: 'x' }))?.message ?? '', /room: 1-64 letters/);

    await bad.request('join', { room: 'r1', name: 'bad', consent: true });
    assert.equal((await err('join', { room: 'r1', name: 'again' }))?.code, 'already_joined');
    // consume before any transport exists
    const noTransport = await err('consume', { transportId: 'nope', producerId: goodProducer, rtpCapabilities: {} });
    assert.equal(noTransport?.code, 'not_found');
    assert.match(noTransport?.message ?? '', /no transport nope/);
    const recv = await bad.request<{ id: string }>('createWebRtcTransport', { direction: 'recv' });
    assert.equal((await err('consume', { transportId: recv.id, producerId: 'ghost', rtpCapabilities: {} }))?.code, 'not_found');
    assert.equal((await err('resumeConsumer', { consumerId: 'ghost' }))?.code, 'not_found');
    // someone else's producer is not yours to close
    assert.equal((await err('closeProducer', { producerId: goodProducer }))?.code, 'not_found');
    // a codec the room does not route, and parameters mediasoup rejects
    const plain = await bad.request<{ id: string }>('createPlainTransport');
    const vp9 = {
      kind: 'video',
      rtpParameters: { codecs: [{ mimeType: 'video/VP9', payloadType: 98, clockRate: 90000 }], encodings: [{ ssrc: 5 }] },
    };
    const unsupported = await err('produce', { transportId: plain.id, ...vp9 });
    assert.equal(unsupported?.code, 'unsupported');
    assert.match(unsupported?.message ?? '', /produce: .*VP9/i);
    const garbage = await err('produce', { transportId: plain.id, kind: 'video', rtpParameters: { codecs: 'x' } });
    assert.ok(garbage && ['bad_request', 'failed'].includes(garbage.code), JSON.stringify(garbage));
    // a producer of the bad peer closing mid-decode ends only its own stream
    const { id: badProducer } = await bad.request<{ id: string }>('produce', { transportId: plain.id, ...h264Producer(777) });
    await until(
      () => sub.got.some((e) => e.stream === badProducer && e.type === 'stream_start'),
      10_000,
      'analysis of the second producer',
    );
    await bad.request('closeProducer', { producerId: badProducer });
    await until(() => sub.got.some((e) => e.stream === badProducer && e.type === 'stream_end'), 10_000, 'its stream_end');

    // after all that, the healthy stream still flows and the server answers
    const n = sub.got.filter((e) => e.stream === goodProducer && e.type === 'emotion').length;
    await until(
      () => sub.got.filter((e) => e.stream === goodProducer && e.type === 'emotion').length > n + 3,
      20_000,
      'more healthy events',
    );
    assert.ok(!sub.got.some((e) => e.stream === goodProducer && e.type === 'stream_end'));
    assert.equal(s.sfu!.placement.isAnalysed(goodProducer), true);
    const health = (await (await fetch(`${s.url}/healthz`)).json()) as { ok: boolean; sfu: { workerDeaths: number } };
    assert.equal(health.ok, true);
    assert.equal(health.sfu.workerDeaths, 0);
    bad.close();
    good.close();
    sub.ws.close();
  });

  it('a socket that sends past the hard limit is closed with 1009; others stay', async () => {
    const other = await TestPeer.open(s.url);
    await other.request('join', { room: 'r2', name: 'other' });
    const big = await TestPeer.open(s.url);
    const closed = new Promise<number>((resolve) => big.ws.once('close', (code) => resolve(code)));
    big.ws.send('x'.repeat(1 << 20));
    assert.equal(await closed, 1009);
    const r = await other.request<{ id: string }>('createWebRtcTransport', { direction: 'recv' });
    assert.ok(r.id);
    other.close();
  });
});

describe('static files cannot escape their folder', () => {
  it('answers 404 to .., encoded and absolute paths, and serves its own files with the security headers', async () => {
    const root = mkdtempSync(join(tmpdir(), 'arpgnet-web-'));
    const web = join(root, 'web');
    mkdirSync(web);
    writeFileSync(join(web, 'overlay.html'), '<p>page</p>');
    writeFileSync(join(web, '..', 'secret.txt'), 'secret');
    const serve = staticFiles(web);
    const server = createServer((req, res) => {
      securityHeaders(res);
      if (!serve(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    // raw request lines: fetch would normalise the dots away before sending
    const get = (path: string): Promise<{ status: number; body: string; csp: string | undefined }> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body, csp: res.headers['content-security-policy'] as string | undefined }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    try {
      const ok = await get('/');
      assert.equal(ok.status, 200);
      assert.equal(ok.body, '<p>page</p>');
      assert.match(ok.csp ?? '', /default-src 'self'/);
      for (const p of [
        '/../secret.txt',
        '/%2e%2e/secret.txt',
        '/%2E%2E%2Fsecret.txt',
        '/..%2fsecret.txt',
        `/${join(web, '..', 'secret.txt')}`,
        '//etc/passwd',
        '/overlay.html/../../secret.txt',
      ]) {
        const r = await get(p);
        assert.equal(r.status, 404, p);
        assert.ok(!r.body.includes('secret'), p);
      }
    } finally {
      server.close();
    }
  });
});
