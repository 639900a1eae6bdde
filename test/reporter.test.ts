import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { LocalBus } from '../src/bus/local.js';
import { silentLogger } from '../src/log.js';
import { envelope, faceSummary, streamEnd, streamStart } from '../src/publish/envelopes.js';
import type { LoggedEvent, RoomSummaryEvent } from '../src/publish/events.js';
import { Reporter } from '../src/roles/reporter.js';

const STATS = {
  decoded: 30,
  analysed: 30,
  sampledOut: 0,
  dropped: 0,
  decodeErrors: 0,
  framesWithoutFace: 0,
  emotions: 20,
  facesTooSmall: 0,
  facesOverLimit: 0,
  actionsFused: 0,
  actionsUnusable: 0,
};
const MODEL = { name: 'arpgnet', version: 'test', labels: ['neutral', 'happiness'], window: 8 };

/** The room's events as its log holds them, once `want` of them have been read. */
async function roomLog(bus: LocalBus, room: string, want: (e: LoggedEvent[]) => boolean): Promise<LoggedEvent[]> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const reader = await bus.readRoom(room, { from: 1, stream: null });
    const got: LoggedEvent[] = [];
    const it = reader[Symbol.asyncIterator]();
    for (;;) {
      const next = await Promise.race([it.next(), new Promise<null>((r) => setTimeout(() => r(null), 50))]);
      if (!next || next.done) break;
      got.push(JSON.parse(next.value.data) as LoggedEvent);
    }
    await reader.close();
    if (want(got)) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`room ${room}: what was waited for never came`);
}

describe('room summaries (reporter)', () => {
  const bus = new LocalBus({ maxAgeMs: 60_000, maxBytes: 1 << 20 });
  // the SFU no longer hosts the room by the time its events are read: the race a short call runs
  const reporter = new Reporter(bus, silentLogger, null, () => false, { settleMs: 2000, idleMs: 60_000 });
  after(async () => {
    await reporter.close();
    await bus.close();
  });

  it('a room that closed before its first stream_start was read still gets its summary, once its stream ends', async () => {
    await reporter.start();
    reporter.roomClosed('short');
    const e = envelope('s1', 'short', 0);
    const sum = { analysedMs: 900, labelMs: { neutral: 600, happiness: 300 }, readings: 9, valence: 0.2, arousal: 0.1, attentive: 1 };
    for (const ev of [
      streamStart(e, { kind: 'rtp', uri: 'rtp://s1', width: 640, height: 480, fps: 30 }, MODEL),
      faceSummary({ ...e, ts: 1000 }, 't1', 100, true, sum),
      streamEnd({ ...e, ts: 1000 }, 'stopped', STATS),
    ] as LoggedEvent[])
      await bus.publishEvent(ev);
    const log = await roomLog(bus, 'short', (got) => got.some((x) => x.type === 'summary' && x.scope === 'room'));
    const room = log.find((x): x is RoomSummaryEvent => x.type === 'summary' && x.scope === 'room')!;
    assert.equal(room.faces, 1);
    assert.equal(room.streams, 1);
    assert.equal(room.analysedMs, 900);
    assert.deepEqual(room.labelMs, { neutral: 600, happiness: 300 });
  });

  it('a room without streams is let go after settleMs, and says nothing', async () => {
    reporter.roomClosed('empty');
    assert.equal(reporter.health()['rooms'], 1);
    await new Promise((r) => setTimeout(r, 2300));
    assert.equal(reporter.health()['rooms'], 0);
    assert.equal(reporter.summaries, 1);
  });
});
