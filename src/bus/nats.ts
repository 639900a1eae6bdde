import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '../log.js';
import type { LoggedEvent } from '../publish/events.js';
import type { Bus, BusMessage, Logged, LogReader, Retention } from './bus.js';
import { mergeReaders } from './merge.js';
import {
  eventSubject,
  LIVE_STREAM,
  liveSubject,
  liveSubjects,
  ROOM_ITSELF,
  roomEvents,
  roomOfStream,
  roomStream,
  STREAM_CREATED,
} from './subjects.js';

/** A stream_start left by a host that died without a word ages out after this long. */
const LIVE_MAX_AGE_MS = 24 * 3600_000;
/** A reader's pull lifetime (its heartbeat is half of it). */
const READ_EXPIRES_MS = 3000;
/** An event publish not acked by then is retried (under the same id, so never twice in the log). */
const PUBLISH_TIMEOUT_MS = 2000;

/**
 * One NATS connection with JetStream: the control plane (heartbeats, requests) and the
 * event log, one JetStream stream per room. It reconnects by itself for as long as the
 * process lives; `up` says whether it is connected now, for /healthz.
 */
export class NatsBus implements Bus {
  readonly name = 'NATS';
  up = true;
  lastError: string | null = null;
  private readonly known = new Set<string>();
  private live: Promise<void> | null = null;

  get describe(): Record<string, unknown> {
    return { nats: this.url, connected: this.up, error: this.lastError };
  }

  private constructor(
    private readonly url: string,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    private readonly retention: Retention,
    private readonly log: Logger,
  ) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.up = false;
          this.lastError = 'disconnected from NATS';
          log.warn('NATS connection lost; reconnecting');
        } else if (s.type === 'reconnect') {
          this.up = true;
          this.lastError = null;
          log.info('NATS connection back');
        }
      }
    })();
  }

  static async open(url: string, name: string, retention: Retention, log: Logger): Promise<NatsBus> {
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    } catch (e) {
      throw new Error(`cannot reach NATS at ${url} (${(e as Error).message})`, { cause: e });
    }
    const jsm = await jetstreamManager(nc).catch((e: unknown) => {
      void nc.close();
      throw new Error(`NATS at ${url} has no JetStream (start nats-server with -js): ${(e as Error).message}`, { cause: e });
    });
    log.info({ nats: url }, 'connected to NATS');
    return new NatsBus(url, nc, jetstream(nc), jsm, retention, log);
  }

  /** The room's event stream, made on first use by whoever needs it first (idempotent). */
  async ensureRoom(room: string): Promise<string> {
    const name = roomStream(room);
    if (this.known.has(name)) return name;
    const config = {
      name,
      subjects: [roomEvents(room)],
      max_age: this.retention.maxAgeMs * 1e6,
      max_bytes: this.retention.maxBytes,
      ...(this.retention.maxEvents ? { max_msgs: this.retention.maxEvents } : {}),
    };
    try {
      await this.jsm.streams.info(name);
    } catch {
      await this.jsm.streams.add(config).catch((e: unknown) => {
        // another process made it meanwhile
        if (!/already in use|exists/i.test((e as Error).message)) throw e;
      });
    }
    this.known.add(name);
    return name;
  }

  /** Into the room's stream; JetStream's sequence becomes the event's seq. */
  async publishEvent(e: LoggedEvent, id?: string): Promise<number> {
    // while NATS is known to be down a publish fails at once: the writer retries it (event-writer.ts)
    if (!this.up) throw new Error('NATS is down');
    const room = e.room ?? '';
    await this.ensureRoom(room);
    const data = JSON.stringify(e);
    // JetStream drops a message whose id it saw within its duplicate window, and acks with the first seq
    const ack = await this.js.publish(eventSubject(room, 'stream' in e ? e.stream : ROOM_ITSELF), data, {
      timeout: PUBLISH_TIMEOUT_MS,
      ...(id ? { msgID: id } : {}),
    });
    if (e.type === 'stream_start' || e.type === 'stream_end') {
      await this.ensureLive();
      const subject = liveSubject(room, e.stream);
      const start: Logged = { room, seq: ack.seq, data };
      if (e.type === 'stream_start') await this.js.publish(subject, JSON.stringify(start));
      else await this.jsm.streams.purge(LIVE_STREAM, { filter: subject });
    }
    return ack.seq;
  }

  /** One stream for every room's running streams, the last message per subject kept. */
  private ensureLive(): Promise<void> {
    return (this.live ??= this.jsm.streams
      .info(LIVE_STREAM)
      .then(() => undefined)
      .catch(() =>
        this.jsm.streams
          .add({ name: LIVE_STREAM, subjects: [liveSubjects(null)], max_msgs_per_subject: 1, max_age: LIVE_MAX_AGE_MS * 1e6 })
          .then(() => undefined)
          .catch((e: unknown) => {
            if (!/already in use|exists/i.test((e as Error).message)) throw e;
          }),
      )
      .catch((e: unknown) => {
        this.live = null;
        throw e;
      }));
  }

  async liveStarts(room: string | null): Promise<Logged[]> {
    await this.ensureLive();
    const info = await this.jsm.streams.info(LIVE_STREAM, { subjects_filter: liveSubjects(room) });
    const out: Logged[] = [];
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const m = await this.jsm.streams.getMessage(LIVE_STREAM, { last_by_subj: subject }).catch(() => null);
      if (m) out.push(m.json<Logged>());
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  publish(subject: string, data: string): void {
    this.nc.publish(subject, data);
  }

  subscribe(subject: string, on: (m: BusMessage) => void): { unsubscribe(): void } {
    return this.nc.subscribe(subject, {
      callback: (err, m) => {
        if (!err) on({ data: m.string(), respond: m.reply ? (r: string) => void m.respond(r) : undefined });
      },
    });
  }

  async request(subject: string, data: string, timeoutMs = 2000): Promise<string> {
    return (await this.nc.request(subject, data, { timeout: timeoutMs })).string();
  }

  async roomLog(room: string): Promise<{ first: number; last: number }> {
    const st = (await this.jsm.streams.info(await this.ensureRoom(room))).state;
    return { first: st.first_seq, last: st.last_seq };
  }

  /** An ordered consumer of the room's stream: exactly from `from`, or what comes next. */
  async readRoom(room: string | null, o: { from: number | null; stream: string | null }): Promise<LogReader> {
    if (room === null) return this.readEveryRoom(o.stream);
    const name = await this.ensureRoom(room);
    const consumer = await this.js.consumers.get(name, {
      filter_subjects: o.stream ? eventSubject(room, o.stream) : roomEvents(room),
      ...(o.from === null ? { deliver_policy: DeliverPolicy.New } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: o.from }),
    });
    // expires sets how soon a reader notices that NATS came back without its consumer (the
    // client's retry backoff is one `expires`): the default 30 s left subscribers silent
    // for up to 45 s after a restart (bench:faults)
    const messages = await consumer.consume({ expires: READ_EXPIRES_MS });
    return {
      close: () => messages.close().then(() => undefined),
      async *[Symbol.asyncIterator]() {
        for await (const m of messages) yield { room, seq: m.seq, data: m.string() };
      },
    };
  }

  /**
   * Every room: the rooms there now from what comes next, and each room made later from
   * its first event (JetStream announces every new stream), so nothing new is missed.
   */
  private async readEveryRoom(stream: string | null): Promise<LogReader> {
    const merged = mergeReaders();
    const opened = new Set<string>();
    const open = async (name: string, from: number | null): Promise<void> => {
      const room = roomOfStream(name);
      if (room === null || opened.has(room)) return;
      opened.add(room);
      merged.add(room, await this.readRoom(room, { from, stream }));
    };
    const created = this.nc.subscribe(STREAM_CREATED, {
      callback: (err, m) => {
        const name = m.subject.slice(STREAM_CREATED.length - 1);
        if (!err) open(name, 1).catch((e: unknown) => this.log.warn({ err: e, room: roomOfStream(name) }, 'cannot read a new room'));
      },
    });
    merged.onClose(() => created.unsubscribe());
    for await (const name of this.jsm.streams.names(roomEvents(null))) await open(name, null);
    return merged;
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
    this.log.debug('NATS connection closed');
  }
}
