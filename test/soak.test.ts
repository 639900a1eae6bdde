import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { soak } from '../bench/lib/soak.js';

/** SOAK_MINUTES lengthens it; `npm run bench:soak` is the long form with its JSON. */
const MINUTES = Number(process.env['SOAK_MINUTES'] ?? 2);

describe('churn soak against a server in its own process (real ffmpeg senders, mediasoup, decoders)', () => {
  it(`${MINUTES} minutes of joins, consent toggles, pauses and leaves: children, transports, ports and rooms back to baseline`, async () => {
    const r = await soak({ minutes: MINUTES, participants: 3, seed: 1, sampleSeconds: 10 });
    process.stdout.write(
      `# soak: ${r.cycles} cycles, ${r.events} events, RSS ${r.start.rssMB} -> ${r.end.rssMB} MB (slope ${r.rssSlopeMBPerMin} MB/min), lag p99 max ${r.lagP99MsMax} ms\n`,
    );
    assert.deepEqual(r.leaks, [], 'everything the participants held was released');
    assert.equal(r.failedCycles, 0, 'every participant cycle completed');
    assert.ok(r.cycles >= 3 * MINUTES * 3, `only ${r.cycles} cycles`);
    assert.ok(r.events > 0, 'events flowed during the churn');
    assert.equal(r.end.streams, 0);
  });
});
