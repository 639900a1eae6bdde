import type { PipelineEvent } from '../publish/events.js';

/** A message on a subject; `respond` is there when the sender waits for a reply. */
export interface BusMessage {
  data: string;
  respond?: ((reply: string) => void) | undefined;
}

/** One subscriber's read of a room's event log: events with their seq, from a point on. */
export interface RoomReader extends AsyncIterable<{ seq: number; data: string }> {
  close(): Promise<void>;
}

/**
 * What the scale-out roles need from the bus: subjects (heartbeats, control requests)
 * and a per-room event log with contiguous sequence numbers. Two implementations:
 * NATS with JetStream between processes and hosts, and an in-process one.
 */
export interface Bus {
  readonly up: boolean;
  readonly lastError: string | null;
  publish(subject: string, data: string): void;
  subscribe(subject: string, on: (m: BusMessage) => void): { unsubscribe(): void };
  /** The reply's text; rejects on timeout or when nobody listens. */
  request(subject: string, data: string, timeoutMs?: number): Promise<string>;
  /** Appends to the room's log; resolves with the event's seq there. */
  publishEvent(e: PipelineEvent): Promise<number>;
  /** The room's log bounds: first held and last written seq (0 when empty). */
  roomLog(room: string): Promise<{ first: number; last: number }>;
  /** From seq `from` on, or only what comes next when `from` is null; optionally one stream's events. */
  readRoom(room: string, o: { from: number | null; stream: string | null }): Promise<RoomReader>;
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
