import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { silentLogger } from '../src/log.js';
import type { PipelineEvent } from '../src/publish/events.js';
import { Authenticator, CLOSE, type Grant } from '../src/host/auth.js';
import { serve, type Serving } from '../src/roles/serve.js';
import { launchChromium, y4mClip } from './browser.js';
import { h264Producer, TestPeer, until } from './call.js';
import { runCli, serveTestConfig } from './helpers.js';

const SECRET = 'test-secret-of-at-least-thirty-two-characters';
const auth = new Authenticator(SECRET, true);
const token = (room: string, grants: Grant[], ttlSeconds = 600): Promise<string> =>
  auth.sign({ room, identity: 'tester', grants, ttlSeconds });
const expired = (room: string, grants: Grant[]): Promise<string> =>
  new SignJWT({ room, grants })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('arpgnet-edge')
    .setSubject('late')
    .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
    .sign(new TextEncoder().encode(SECRET));

const closed = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
  new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));

interface Sub {
  got: PipelineEvent[];
  /** The close code, or null if the socket is still open after `ms`. */
  code(ms: number): Promise<number | null>;
  ws: WebSocket;
}

/** A subscriber that authenticates by its first message. */
async function subscribe(base: string, query: string, tok: string | null, origin?: string): Promise<Sub> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/events${query}`, origin ? { origin } : {});
  const got: PipelineEvent[] = [];
  ws.on('message', (d) => got.push(JSON.parse(String(d)) as PipelineEvent));
  const end = closed(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'auth', ...(tok ? { token: tok } : {}) }));
  return {
    got,
    ws,
    code: async (ms) => (await Promise.race([end, new Promise<null>((res) => setTimeout(() => res(null), ms))]))?.code ?? null,
  };
}
const refusal = async (base: string, query: string, tok: string | null, origin?: string): Promise<number | null> => {
  const sub = await subscribe(base, query, tok, origin);
  const code = await sub.code(1500);
  sub.ws.close();
  return code;
};

describe('room tokens on /signaling and /events', () => {
  let s: Serving;
  before(async () => {
    const c = serveTestConfig();
    s = await serve({ ...c, auth: { mode: 'on', secret: SECRET, origins: [] } }, silentLogger);
  });
  after(async () => {
    await s?.close();
  });

  it('/signaling: a join without a valid token is refused with a close code that says why', async () => {
    const cases: Array<[string, string | undefined, number]> = [
      ['missing', undefined, CLOSE.unauthenticated],
      ['forged', `${await token('a', ['join'])}x`, CLOSE.unauthenticated],
      ['expired', await expired('a', ['join']), CLOSE.expired],
      ['wrong room', await token('b', ['join']), CLOSE.wrongRoom],
      ['missing grant', await token('a', ['subscribe']), CLOSE.missingGrant],
    ];
    for (const [what, tok, code] of cases) {
      const p = await TestPeer.open(s.url);
      const end = closed(p.ws);
      const r = await p.call('join', { room: 'a', name: 'x', ...(tok ? { token: tok } : {}) });
      assert.equal(r.ok, false, what);
      assert.equal(r.error?.code, 'unauthorized', what);
      assert.equal((await end).code, code, what);
    }
    assert.ok(s.auth.refusals.expired >= 1 && s.auth.refusals.wrongRoom >= 1 && s.auth.refusals.missingGrant >= 1);
  });

  it('/signaling: a participant without publish cannot produce, without analyse cannot consent', async () => {
    const p = await TestPeer.open(s.url);
    await p.request('join', { room: 'a', name: 'viewer', token: await token('a', ['join']) });
    const t = await p.request<{ id: string }>('createPlainTransport');
    const r = await p.call('produce', { transportId: t.id, ...h264Producer(4242) });
    assert.equal(r.ok, false);
    assert.equal(r.error?.code, 'forbidden');
    assert.match(r.error?.message ?? '', /does not grant 'publish'/);
    const c = await p.call('setConsent', { consent: true });
    assert.equal(c.error?.code, 'forbidden');
    p.close();
    const q = await TestPeer.open(s.url);
    await q.request('join', { room: 'a', name: 'sender', token: await token('a', ['join', 'publish']) });
    const t2 = await q.request<{ id: string }>('createPlainTransport');
    const ok = await q.request<{ id: string; analysed: boolean }>('produce', { transportId: t2.id, ...h264Producer(4343) });
    assert.equal(ok.analysed, false, 'no analyse grant, no consent: nothing is decoded');
    q.close();
    const k = await TestPeer.open(s.url);
    await k.request('join', { room: 'a', name: 'kiosk', consent: true, token: await token('a', ['kiosk']) });
    k.close();
  });

  it('/events: missing, expired, wrong-room and missing-grant tokens are refused; a bad origin too', async () => {
    assert.equal(await refusal(s.url, '?room=a', null), CLOSE.unauthenticated);
    assert.equal(await refusal(s.url, '?room=a', await expired('a', ['subscribe'])), CLOSE.expired);
    assert.equal(await refusal(s.url, '?room=a', await token('b', ['subscribe'])), CLOSE.wrongRoom);
    assert.equal(await refusal(s.url, '?room=a', await token('a', ['join'])), CLOSE.missingGrant);
    assert.equal(await refusal(s.url, '?room=a', await token('a', ['subscribe']), 'http://elsewhere.example'), CLOSE.badOrigin);
    assert.equal(await refusal(s.url, '?room=a', await token('a', ['subscribe'])), null, 'a good token stays connected');
  });
});

describe('room isolation with a real browser call and tokens', () => {
  let s: Serving;
  let chrome: Awaited<ReturnType<typeof launchChromium>>;
  before(async () => {
    const c = serveTestConfig();
    s = await serve({ ...c, auth: { mode: 'on', secret: SECRET, origins: [] } }, silentLogger);
    chrome = await launchChromium(y4mClip());
  });
  after(async () => {
    await chrome?.close();
    await s?.close();
  });

  it("a room-B subscriber receives nothing of room A's call, a room-A subscriber does", async () => {
    const a = await subscribe(s.url, '?room=roomA', await token('roomA', ['subscribe']));
    const b = await subscribe(s.url, '?room=roomB', await token('roomB', ['subscribe']));
    const w = await subscribe(s.url, '', await token('roomB', ['subscribe'])); // no filter: narrowed to its token's room
    const page = await (await chrome.browser.newContext()).newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    const pageToken = await token('roomA', ['join', 'publish', 'analyse', 'subscribe']);
    // the token rides in the fragment: never sent in a request line
    await page.goto(`${s.url}/?room=roomA&name=alice&autostart=1&consent=1#token=${pageToken}`);
    await page.waitForSelector('body[data-state="joined"]', { timeout: 30_000 });
    try {
      await until(() => a.got.some((e) => e.type === 'emotion' && e.room === 'roomA'), 60_000, 'room A emotions');
      // the page itself reads its events through the client, authenticated by the same token
      await page.locator('.face .label').first().waitFor({ timeout: 30_000 });
    } catch (e) {
      process.stderr.write(`browser console:\n${logs.slice(-20).join('\n')}\nanalysis: ${JSON.stringify(s.analyser!.counters)}\n`);
      throw e;
    }
    await page.close();
    for (const x of [a, b, w]) x.ws.close();
    assert.equal(b.got.length, 0, 'room B subscriber got nothing');
    assert.equal(w.got.length, 0, 'an unfiltered room-B subscriber got nothing');
  });
});

describe('EdDSA room tokens: the server holds only the public key', () => {
  let s: Serving;
  const dir = mkdtempSync(join(tmpdir(), 'arpgnet-keys-'));
  const pub = join(dir, 'public.pem');
  const priv = join(dir, 'private.pem');
  before(async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const c = serveTestConfig();
    s = await serve({ ...c, auth: { mode: 'on', publicKeyFile: pub, origins: [] } }, silentLogger);
  });
  after(async () => {
    await s?.close();
  });

  it('`arpgnet-edge token` signs with the private key; the server accepts it and refuses HS256 tokens', async () => {
    const r = await runCli(['token', '--room', 'ed', '--identity', 'kiosk-1', '--grant', 'subscribe', '--ttl', '10m'], {
      ARPGNET_AUTH_PRIVATE_KEY_FILE: priv,
    });
    assert.equal(r.code, 0, r.stderr);
    const tok = r.stdout.trim();
    assert.equal(JSON.parse(Buffer.from(tok.split('.')[0]!, 'base64url').toString()).alg, 'EdDSA');
    assert.equal(await refusal(s.url, '?room=ed', tok), null, 'an EdDSA token from the key pair is accepted');
    assert.equal(
      await refusal(s.url, '?room=ed', await token('ed', ['subscribe'])),
      CLOSE.unauthenticated,
      'no secret here: HS256 is refused',
    );
    const bad = await runCli(['token', '--room', 'ed', '--identity', 'x', '--grant', 'watch'], { ARPGNET_AUTH_PRIVATE_KEY_FILE: priv });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--grant: watch/);
  });
});
