import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '../log.js';
import type { PipelineEvent } from '../publish/events.js';
import type { Bus, BusMessage, RoomReader } from './bus.js';
import { eventSubject, roomEvents, roomStream } from './subjects.js';

export interface Retention {
  /** Events kept per room, and for how long: what a reconnecting subscriber can still resume. */
  maxAgeMs: number;
  maxBytes: number;
}

/**
 * One NATS connection with JetStream: the control plane (heartbeats, requests) and the
 * event log, one JetStream stream per room. It reconnects by itself for as long as the
 * process lives; `up` says whether it is connected now, for /healthz.
 */
export class NatsBus implements Bus {
  up = true;
  lastError: string | null = null;
  private readonly known = new Set<string>();

  private constructor(
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
    return new NatsBus(nc, jetstream(nc), jsm, retention, log);
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
  async publishEvent(e: PipelineEvent): Promise<number> {
    const room = e.room ?? '';
    await this.ensureRoom(room);
    const ack = await this.js.publish(eventSubject(room, e.stream), JSON.stringify(e));
    return ack.seq;
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
  async readRoom(room: string, o: { from: number | null; stream: string | null }): Promise<RoomReader> {
    const name = await this.ensureRoom(room);
    const consumer = await this.js.consumers.get(name, {
      filter_subjects: o.stream ? eventSubject(room, o.stream) : roomEvents(room),
      ...(o.from === null ? { deliver_policy: DeliverPolicy.New } : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: o.from }),
    });
    const messages = await consumer.consume();
    return {
      close: () => messages.close().then(() => undefined),
      async *[Symbol.asyncIterator]() {
        for await (const m of messages) yield { seq: m.seq, data: m.string() };
      },
    };
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
    this.log.debug('NATS connection closed');
  }
}
