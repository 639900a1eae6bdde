import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EventLog } from '../src/bus/bus.js';
import { LocalBus } from '../src/bus/local.js';
import { silentLogger } from '../src/log.js';
import type { PipelineEvent } from '../src/publish/events.js';
import { EventWriter, type WriterCounters } from '../src/roles/event-writer.js';

const event = (i: number): PipelineEvent =>
  ({ type: 'stream_end', stream: 's', room: 'r', reason: 'ended', ts: i, frames: i }) as unknown as PipelineEvent;

/**
 * The in-process log behind a switch, as NATS is while it restarts: appends fail while
 * it is down, and one append may land but lose its ack (the case the ids are for).
 */
class Flaky implements Pick<EventLog, 'publishEvent'> {
  down = false;
  loseNextAck = false;
  readonly seen = new Set<string>();
  constructor(readonly log = new LocalBus({ maxAgeMs: 60_000, maxBytes: 1 << 20 })) {}
  async publishEvent(e: PipelineEvent, id?: string): Promise<number> {
    if (this.down) throw new Error('bus down');
    // JetStream's duplicate window: an id seen before is acked without a second append
    if (id && this.seen.has(id)) return (await this.log.roomLog('r')).last;
    if (id) this.seen.add(id);
    const seq = await this.log.publishEvent(e);
    if (this.loseNextAck) {
      this.loseNextAck = false;
      throw new Error('ack lost');
    }
    return seq;
  }
}

async function logged(l: LocalBus): Promise<number[]> {
  const r = await l.readRoom('r', { from: 1, stream: null });
  const out: number[] = [];
  const { last } = await l.roomLog('r');
  for await (const m of r) {
    out.push((JSON.parse(m.data) as { ts: number }).ts);
    if (m.seq >= last) break;
  }
  await r.close();
  return out;
}

describe('event writer: events into the log across a bus outage', () => {
  it('holds events while the log is down and writes each once, in order, when it is back', async () => {
    const f = new Flaky();
    const c: WriterCounters = { written: 0, retried: 0, dropped: 0 };
    const w = new EventWriter(f as unknown as EventLog, { maxQueue: 100, giveUpMs: 30_000, log: silentLogger }, c);
    w.write(event(1));
    await w.flushed();
    f.down = true;
    for (let i = 2; i <= 20; i++) w.write(event(i));
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(c.retried > 0, 'it kept trying');
    assert.equal(w.pending, 19, 'the one being tried and the 18 behind it');
    f.loseNextAck = true;
    f.down = false;
    await w.flushed();
    assert.deepEqual(
      await logged(f.log),
      Array.from({ length: 20 }, (_, i) => i + 1),
      'every event once, in order',
    );
    assert.deepEqual({ written: c.written, dropped: c.dropped }, { written: 20, dropped: 0 });
  });

  it('keeps at most maxQueue events waiting while down and counts the oldest it drops', async () => {
    const f = new Flaky();
    f.down = true;
    const c: WriterCounters = { written: 0, retried: 0, dropped: 0 };
    const w = new EventWriter(f as unknown as EventLog, { maxQueue: 5, giveUpMs: 30_000, log: silentLogger }, c);
    for (let i = 1; i <= 12; i++) w.write(event(i));
    // the first is being tried; of the eleven behind it the newest five wait
    assert.equal(w.pending, 6);
    assert.equal(c.dropped, 6);
    f.down = false;
    await w.flushed();
    assert.deepEqual(await logged(f.log), [1, 8, 9, 10, 11, 12], 'the one in flight, then the newest five, in order');
  });

  it('gives an event up (counted) once the log has refused it past giveUpMs', async () => {
    const f = new Flaky();
    f.down = true;
    const c: WriterCounters = { written: 0, retried: 0, dropped: 0 };
    const w = new EventWriter(f as unknown as EventLog, { maxQueue: 5, giveUpMs: 300, log: silentLogger }, c);
    w.write(event(1));
    await w.flushed();
    assert.deepEqual(c, { written: 0, retried: c.retried, dropped: 1 });
    assert.ok(c.retried >= 2);
  });

  it('a second writer of the same stream (the analyser that took it over) is not taken for duplicates of the first', async () => {
    const f = new Flaky();
    const c: WriterCounters = { written: 0, retried: 0, dropped: 0 };
    const first = new EventWriter(f as unknown as EventLog, { maxQueue: 10, giveUpMs: 1000, log: silentLogger }, c);
    for (let i = 1; i <= 3; i++) first.write(event(i));
    await first.flushed();
    const second = new EventWriter(f as unknown as EventLog, { maxQueue: 10, giveUpMs: 1000, log: silentLogger }, c);
    for (let i = 4; i <= 6; i++) second.write(event(i));
    await second.flushed();
    assert.deepEqual(await logged(f.log), [1, 2, 3, 4, 5, 6]);
  });
});
