import type { LoggedEvent } from '../publish/events.js';
import { ROOM_ITSELF } from './subjects.js';
import type { Bus, BusMessage, Logged, LogReader, Retention } from './bus.js';

interface Entry extends Logged {
  stream: string;
  at: number;
}

interface RoomLog {
  room: string;
  entries: Entry[];
  next: number;
  bytes: number;
}

/**
 * The bus inside one process: subjects are exact names delivered on the next
 * microtask, requests need a subscriber that responds, and each room's log is a
 * bounded ring with the same contiguous seq and retention rules as its JetStream
 * stream. The roles cannot tell it from NATS, so one process runs them all.
 */
export class LocalBus implements Bus {
  readonly name = 'in-process';
  readonly up = true;
  readonly lastError = null;
  readonly describe = { inProcess: true };
  private readonly subs = new Map<string, Set<(m: BusMessage) => void>>();
  private readonly rooms = new Map<string, RoomLog>();
  private readonly starts = new Map<string, Entry>();
  /** Readers waiting for the next entry of any room. */
  private readonly wake = new Set<() => void>();
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
    if (!l) this.rooms.set(room, (l = { room, entries: [], next: 1, bytes: 0 }));
    return l;
  }

  private trim(l: RoomLog): void {
    const old = Date.now() - this.retention.maxAgeMs;
    const most = this.retention.maxEvents ?? Infinity;
    let k = 0;
    while (k < l.entries.length && (l.entries[k]!.at < old || l.bytes > this.retention.maxBytes || l.entries.length - k > most))
      l.bytes -= l.entries[k++]!.data.length;
    if (k) l.entries.splice(0, k);
  }

  publishEvent(e: LoggedEvent): Promise<number> {
    const l = this.log(e.room ?? '');
    const entry: Entry = {
      room: l.room,
      seq: l.next++,
      stream: 'stream' in e ? e.stream : ROOM_ITSELF,
      data: JSON.stringify(e),
      at: Date.now(),
    };
    l.entries.push(entry);
    l.bytes += entry.data.length;
    this.trim(l);
    if (e.type === 'stream_start') this.starts.set(e.stream, entry);
    else if (e.type === 'stream_end') this.starts.delete(e.stream);
    for (const w of [...this.wake]) w();
    return Promise.resolve(entry.seq);
  }

  roomLog(room: string): Promise<{ first: number; last: number }> {
    const l = this.log(room);
    this.trim(l);
    return Promise.resolve({ first: l.entries[0]?.seq ?? l.next, last: l.next - 1 });
  }

  liveStarts(room: string | null): Promise<Logged[]> {
    const out = [...this.starts.values()].filter((s) => room === null || s.room === room);
    return Promise.resolve(out.map(({ room: r, seq, data }) => ({ room: r, seq, data })));
  }

  readRoom(room: string | null, o: { from: number | null; stream: string | null }): Promise<LogReader> {
    // the next seq to read in each room; a room first seen later is read from its start
    const cursor = new Map<RoomLog, number>();
    const rooms = (): RoomLog[] => (room === null ? [...this.rooms.values()] : [this.log(room)]);
    for (const l of rooms()) cursor.set(l, room !== null && o.from !== null ? o.from : l.next);
    let stopped = false;
    let waiting: (() => void) | null = null;
    // the iterator below is a method of the reader: it reaches the bus through these
    const wake = this.wake;
    const closed = (): boolean => this.closed;
    const next = (): Entry | null => {
      for (const l of rooms()) {
        const at = cursor.get(l) ?? 1;
        // seqs in a room's log are contiguous: the next one's index is arithmetic
        const first = l.entries[0]?.seq ?? l.next;
        for (let i = Math.max(0, at - first); i < l.entries.length; i++) {
          const x = l.entries[i]!;
          cursor.set(l, x.seq + 1);
          if (!o.stream || x.stream === o.stream) return x;
        }
        cursor.set(l, Math.max(at, l.next));
      }
      return null;
    };
    return Promise.resolve({
      close: () => {
        stopped = true;
        waiting?.();
        return Promise.resolve();
      },
      async *[Symbol.asyncIterator]() {
        while (!stopped && !closed()) {
          const x = next();
          if (x) {
            yield { room: x.room, seq: x.seq, data: x.data };
            continue;
          }
          await new Promise<void>((r) => {
            waiting = () => {
              wake.delete(waiting!);
              r();
            };
            wake.add(waiting);
          });
        }
      },
    });
  }

  close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.wake]) w();
    this.subs.clear();
    return Promise.resolve();
  }
}
