import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { silentLogger } from '../src/log.js';
import { checkPurpose } from '../src/host/privacy.js';
import { serve } from '../src/roles/serve.js';
import { TestPeer, until } from './call.js';
import { serveTestConfig } from './helpers.js';

describe('privacy by default', () => {
  it('refuses workplace and education purposes unless declared medical or safety (AI Act Art. 5(1)(f))', async () => {
    assert.throws(() => checkPurpose('workplace'), /Art\. 5\(1\)\(f\)/);
    assert.throws(() => checkPurpose('education'), /prohibited/);
    assert.doesNotThrow(() => checkPurpose('workplace', 'safety'));
    assert.doesNotThrow(() => checkPurpose('personal'));
    const c = serveTestConfig();
    await assert.rejects(serve({ ...c, privacy: { purpose: 'education' } }, silentLogger), /Art\. 5\(1\)\(f\)/);
  });

  it('writes consent given and withdrawn to an append-only log, and nothing of the face', async () => {
    const log = join(mkdtempSync(join(tmpdir(), 'arpgnet-audit-')), 'consent.jsonl');
    const c = serveTestConfig();
    const s = await serve({ ...c, privacy: { purpose: 'personal', auditLog: log } }, silentLogger);
    try {
      const p = await TestPeer.open(s.url);
      await p.request('join', { room: 'audit', name: 'ana', consent: true });
      await p.request('setConsent', { consent: false });
      await p.request('setConsent', { consent: false }); // no change, no line
      await p.request('setConsent', { consent: true });
      await p.request('leave');
      p.close();
      await until(() => readFileSync(log, 'utf8').trim().split('\n').length === 4, 5000, 'four audit lines');
      const lines = readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(
        lines.map((l) => [l['reason'], l['consent']]),
        [
          ['join', true],
          ['changed', false],
          ['changed', true],
          ['left', false],
        ],
      );
      for (const l of lines) {
        assert.deepEqual(Object.keys(l).sort(), ['consent', 'identity', 'peer', 'reason', 'room', 'streams', 'time']);
        assert.equal(l['room'], 'audit');
        assert.equal(l['identity'], 'ana');
      }
    } finally {
      await s.close();
    }
  });
});
