import type { Bus, Logged, LogReader } from '../bus/bus.js';
import type { Logger } from '../log.js';
import { Tally } from '../pipeline/readings/summary.js';
import { roomSummary } from '../publish/envelopes.js';
import type { LoggedEvent } from '../publish/events.js';
import type { Webhooks } from '../publish/webhooks.js';

interface RoomState {
  tally: Tally;
  faces: number;
  streams: Set<string>;
  /** Streams started and not yet ended. */
  live: Set<string>;
  closedAt: number | null;
  timer: NodeJS.Timeout | null;
  lastAt: number;
}

const fresh = (): RoomState => ({
  tally: new Tally(),
  faces: 0,
  streams: new Set(),
  live: new Set(),
  closedAt: null,
  timer: null,
  lastAt: 0,
});

const WANTED = ['"type":"stream_start"', '"type":"stream_end"', '"type":"summary"'];

/** The event as /events sends it: its seq first. */
const withSeq = (m: Logged): string => `{"seq":${m.seq},${m.data.slice(1)}`;

export interface ReporterOptions {
  /** After its room closed, how long its streams' last events (their faces' final summaries) are waited for. */
  settleMs: number;
  /** A room's tally with no stream live and no event for this long is let go (its close was never seen). */
  idleMs: number;
}

/**
 * What is said of a room when it is over, and to the webhooks, from the SFU that holds
 * it, so each room has one reporter wherever the analysers and gateways are: it reads
 * every room's log, keeps the rooms open here, sums their faces' final summaries, and
 * when a room closes (its last peer left) writes the room's summary into its log once
 * its streams have ended. stream_start, stream_end and summaries go to the webhooks,
 * identified by room and seq (the same on every retry).
 */
export class Reporter {
  private readonly rooms = new Map<string, RoomState>();
  private reader: LogReader | null = null;
  private readonly sweep: NodeJS.Timeout;
  summaries = 0;

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
    private readonly webhooks: Webhooks | null,
    /** Whether a room is open on this SFU. */
    private readonly hosts: (room: string) => boolean,
    private readonly o: ReporterOptions,
  ) {
    this.sweep = setInterval(() => this.forgetIdle(), Math.min(60_000, o.idleMs));
    this.sweep.unref();
  }

  async start(): Promise<void> {
    this.reader = await this.bus.readRoom(null, { from: null, stream: null });
    void this.read(this.reader).catch((e: unknown) => this.log.warn({ err: e }, 'reporter stopped reading'));
  }

  private async read(reader: LogReader): Promise<void> {
    for await (const m of reader) this.onEvent(m);
  }

  private onEvent(m: Logged): void {
    // every room's every event comes by, emotion events most of all: only the few read here are parsed
    if (!WANTED.some((t) => m.data.includes(t))) return;
    const e = JSON.parse(m.data) as LoggedEvent;
    let r = this.rooms.get(m.room);
    if (!r && e.type === 'stream_start' && this.hosts(m.room)) this.rooms.set(m.room, (r = fresh()));
    if (!r) return;
    if (e.type === 'stream_start' || e.type === 'stream_end' || e.type === 'summary')
      this.webhooks?.send(`${m.room}:${m.seq}`, e.type, withSeq(m));
    r.lastAt = Date.now();
    if (e.type === 'stream_start') {
      r.streams.add(e.stream);
      r.live.add(e.stream);
    } else if (e.type === 'stream_end') {
      r.live.delete(e.stream);
      if (r.closedAt !== null && !r.live.size) this.finish(m.room, r);
    } else if (e.type === 'summary' && e.scope === 'face' && e.final) {
      r.tally.merge(e);
      r.faces++;
    }
  }

  /**
   * The room's last peer left: its summary once the streams seen have ended, or settleMs on
   * (also for a room whose streams are not read yet, or that had none: then nothing is said).
   */
  roomClosed(room: string): void {
    let r = this.rooms.get(room);
    // a short call can close before its first stream_start is read here: its events are still to come
    if (!r) this.rooms.set(room, (r = fresh()));
    r.closedAt = Date.now();
    if (r.streams.size && !r.live.size) return this.finish(room, r);
    r.timer = setTimeout(() => this.finish(room, r), this.o.settleMs);
    r.timer.unref();
  }

  private finish(room: string, r: RoomState): void {
    if (this.rooms.get(room) !== r) return;
    this.rooms.delete(room);
    if (r.timer) clearTimeout(r.timer);
    if (!r.faces) return;
    const e = roomSummary(room, r.faces, r.streams.size, r.tally.summary());
    this.summaries++;
    // the room is gone from here by the time the log hands the summary back: it is webhooked as written
    this.bus
      .publishEvent(e, `room-summary:${room}:${r.closedAt}`)
      .then((seq) => this.webhooks?.send(`${room}:${seq}`, 'summary', withSeq({ room, seq, data: JSON.stringify(e) })))
      .catch((err: unknown) => this.log.warn({ err, room }, 'room summary not written'));
  }

  private forgetIdle(): void {
    const old = Date.now() - this.o.idleMs;
    for (const [room, r] of this.rooms) if (!r.live.size && r.closedAt === null && r.lastAt < old) this.rooms.delete(room);
  }

  health(): Record<string, unknown> {
    return {
      rooms: this.rooms.size,
      summaries: this.summaries,
      webhooks: this.webhooks ? { endpoints: this.webhooks.size, queued: this.webhooks.queued, ...this.webhooks.counts } : null,
    };
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    for (const r of this.rooms.values()) if (r.timer) clearTimeout(r.timer);
    this.rooms.clear();
    this.webhooks?.close();
    await this.reader?.close();
  }
}
