import { randomUUID } from 'node:crypto';
import type { EventLog } from '../bus/bus.js';
import type { Logger } from '../log.js';
import type { PipelineEvent } from '../publish/events.js';

export interface WriterCounters {
  written: number;
  /** Attempts that failed and were tried again (the bus was down, an ack was late). */
  retried: number;
  /** Events dropped unwritten: the queue was full, or the log refused them for longer than giveUpMs. */
  dropped: number;
}

export interface WriterOptions {
  /** Events waiting per stream while the log does not take them; past it the oldest go, counted. */
  maxQueue: number;
  /** How long one event is tried before it is given up, counted. */
  giveUpMs: number;
  log: Logger;
}

const BACKOFF_MS = [100, 250, 500, 1000, 2000] as const;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One stream's events into the room's log, in order, one at a time. While the log does
 * not take them (NATS restarting) they wait in a bounded queue and are tried again with
 * backoff, each under an id the log deduplicates (JetStream's Nats-Msg-Id), so an
 * event whose ack was lost is not written twice. Analysis never waits on this.
 */
export class EventWriter {
  /** Waiting to be written; the one being written is out of it. */
  private readonly queue: Array<{ e: PipelineEvent; id: string }> = [];
  private inFlight = 0;
  private running: Promise<void> | null = null;
  private n = 0;
  /**
   * Ids are unique to this writer, not only to the stream: an analyser that takes a stream
   * over after a failover counts from 0 again, and JetStream would drop its events as
   * duplicates of the dead analyser's within its window (its stream_start first).
   */
  private readonly prefix = `${randomUUID()}/`;

  constructor(
    private readonly to: EventLog,
    private readonly o: WriterOptions,
    private readonly counters: WriterCounters,
  ) {}

  write(e: PipelineEvent): void {
    // attempt-independent: a retry is the same message
    this.queue.push({ e, id: `${this.prefix}${this.n++}` });
    while (this.queue.length > this.o.maxQueue) {
      this.queue.shift();
      this.counters.dropped++;
    }
    this.running ??= this.drain().finally(() => (this.running = null));
  }

  /** Resolves once everything queued so far was written or given up. */
  async flushed(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Events not yet in the log: waiting, and the one being written. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  private async drain(): Promise<void> {
    for (let item = this.queue.shift(); item; item = this.queue.shift()) {
      this.inFlight = 1;
      const t0 = Date.now();
      for (let attempt = 0; ; attempt++) {
        try {
          await this.to.publishEvent(item.e, item.id);
          this.counters.written++;
          break;
        } catch (err) {
          if (Date.now() - t0 > this.o.giveUpMs) {
            this.counters.dropped++;
            this.o.log.warn({ err, type: item.e.type }, 'event not written to the log; given up');
            break;
          }
          this.counters.retried++;
          if (attempt === 0) this.o.log.warn({ err }, 'event not written to the log; trying again');
          await sleep(BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!);
        }
      }
      this.inFlight = 0;
    }
  }
}
