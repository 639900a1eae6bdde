import type { PipelineEvent } from '../publish/events.js';
import type { Bus, BusMessage, RoomReader } from './bus.js';
import type { Retention } from './nats.js';

interface Logged {
  seq: number;
  stream: string;
  data: string;
  at: number;
}

interface RoomLog {
  entries: Logged[];
  next: number;
  bytes: number;
  /** Readers waiting for the next entry. */
  wake: Set<() => void>;
}

/**
 * The bus inside one process: subjects are exact names delivered on the next
 * microtask, requests need a subscriber that responds, and each room's log is a
 * bounded array with the same contiguous seq and retention rules as its JetStream
 * stream. The roles cannot tell it from NATS, so one process can run them all.
 */
export class LocalBus implements Bus {
  readonly up = true;
  readonly lastError = null;
  private readonly subs = new Map<string, Set<(m: BusMessage) => void>>();
  private readonly rooms = new Map<string, RoomLog>();
  private closed = false;

  constructor(private readonly retention: Retention) {}

  publish(subject: string, data: string): void {
    for (const on of this.subs.get(subject) ?? []) queueMicrotask(() => on({ data }));
  }

  subscribe(subject: string, on: (m: BusMessage) => void): { unsubscribe(): void } {
    let set = this.subs.get(subject);
    if (!set) this.subs.set(subject, (set = new Set()));
    set.add(on);
    return { unsubscribe: () => void set.delete(on) };
  }

  request(subject: string, data: string, timeoutMs = 2000): Promise<string> {
    const set = this.subs.get(subject);
    if (!set?.size) return Promise.reject(new Error(`no responders: '${subject}'`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`request to ${subject} timed out`)), timeoutMs);
      let answered = false;
      const respond = (r: string): void => {
        if (answered) return;
        answered = true;
        clearTimeout(timer);
        resolve(r);
      };
      // like NATS, the first of several responders wins
      for (const on of set) queueMicrotask(() => on({ data, respond }));
    });
  }

  private log(room: string): RoomLog {
    let l = this.rooms.get(room);
    if (!l) this.rooms.set(room, (l = { entries: [], next: 1, bytes: 0, wake: new Set() }));
    return l;
  }

  private trim(l: RoomLog): void {
    const old = Date.now() - this.retention.maxAgeMs;
    let k = 0;
    while (k < l.entries.length && (l.entries[k]!.at < old || l.bytes > this.retention.maxBytes)) l.bytes -= l.entries[k++]!.data.length;
    if (k) l.entries.splice(0, k);
  }

  publishEvent(e: PipelineEvent): Promise<number> {
    const l = this.log(e.room ?? '');
    const entry: Logged = { seq: l.next++, stream: e.stream, data: JSON.stringify(e), at: Date.now() };
    l.entries.push(entry);
    l.bytes += entry.data.length;
    this.trim(l);
    for (const w of [...l.wake]) w();
    return Promise.resolve(entry.seq);
  }

  roomLog(room: string): Promise<{ first: number; last: number }> {
    const l = this.log(room);
    this.trim(l);
    return Promise.resolve({ first: l.entries[0]?.seq ?? l.next, last: l.next - 1 });
  }

  readRoom(room: string, o: { from: number | null; stream: string | null }): Promise<RoomReader> {
    const l = this.log(room);
    let next = o.from ?? l.next;
    let stopped = false;
    let wake: (() => void) | null = null;
    const busClosed = (): boolean => this.closed;
    return Promise.resolve({
      close: async () => {
        stopped = true;
        wake?.();
      },
      async *[Symbol.asyncIterator]() {
        while (!stopped && !busClosed()) {
          // seqs in a room's log are contiguous: the next one's index is arithmetic
          const first = l.entries[0]?.seq ?? l.next;
          const i = Math.max(0, next - first);
          if (i >= l.entries.length) {
            await new Promise<void>((r) => {
              wake = () => {
                l.wake.delete(wake!);
                r();
              };
              l.wake.add(wake);
            });
            continue;
          }
          const x = l.entries[i]!;
          next = x.seq + 1;
          if (!o.stream || x.stream === o.stream) yield { seq: x.seq, data: x.data };
        }
      },
    });
  }

  close(): Promise<void> {
    this.closed = true;
    for (const l of this.rooms.values()) for (const w of [...l.wake]) w();
    this.subs.clear();
    return Promise.resolve();
  }
}
