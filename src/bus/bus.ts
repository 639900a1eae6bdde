import type { LoggedEvent } from '../publish/events.js';

/** A message on a subject; `respond` is there when the sender waits for a reply. */
export interface BusMessage {
  data: string;
  respond?: ((reply: string) => void) | undefined;
}

/** One event as the log holds it: JSON without its seq, which is the log's own. */
export interface Logged {
  room: string;
  seq: number;
  data: string;
}

/** One subscriber's read of the event log: events with their seq, from a point on. */
export interface LogReader extends AsyncIterable<Logged> {
  close(): Promise<void>;
}

/** What a room's log keeps for subscribers that resume: the oldest go first past any bound. */
export interface Retention {
  maxAgeMs: number;
  maxBytes: number;
  /** Events per room (the in-process ring's size; JetStream's max_msgs). */
  maxEvents?: number | undefined;
}

/**
 * The event log every /events endpoint serves from: one log per room with contiguous
 * sequence numbers, and the stream_start of every stream still running, so a late
 * subscriber learns each stream's frame size and labels. Two implementations: an
 * in-process ring (LocalBus) and JetStream (NatsBus).
 */
export interface EventLog {
  /**
   * Appends to the room's log; resolves with the event's seq there. An event given the
   * `id` of one already appended (a retry whose first ack was lost) is not appended twice.
   */
  publishEvent(e: LoggedEvent, id?: string): Promise<number>;
  /** The room's log bounds: first held and last written seq (0 when empty). */
  roomLog(room: string): Promise<{ first: number; last: number }>;
  /**
   * From seq `from` on, or only what comes next when `from` is null; optionally one
   * stream's events. `room` null reads every room (live only), rooms made later included.
   */
  readRoom(room: string | null, o: { from: number | null; stream: string | null }): Promise<LogReader>;
  /** The stream_start of each stream that has not ended, in one room or in all. */
  liveStarts(room: string | null): Promise<Logged[]>;
}

/**
 * What the roles need from the bus: subjects (heartbeats, control requests) and the
 * event log. NATS with JetStream between processes and hosts, or in one process.
 */
export interface Bus extends EventLog {
  /** What it is called in words a user reads ("NATS", "in-process"). */
  readonly name: string;
  readonly up: boolean;
  readonly lastError: string | null;
  /** Says what it is on /healthz. */
  readonly describe: Record<string, unknown>;
  publish(subject: string, data: string): void;
  subscribe(subject: string, on: (m: BusMessage) => void): { unsubscribe(): void };
  /** The reply's text; rejects on timeout or when nobody listens. */
  request(subject: string, data: string, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

/** JSON request/reply over any bus. */
export async function requestJson<T>(bus: Bus, subject: string, data: unknown, timeoutMs = 2000): Promise<T> {
  return JSON.parse(await bus.request(subject, JSON.stringify(data), timeoutMs)) as T;
}

export function parseJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}
