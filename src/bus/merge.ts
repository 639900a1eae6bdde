import type { Logged, LogReader } from './bus.js';

export interface MergedReader extends LogReader {
  add(room: string, r: LogReader): void;
  onClose(f: () => void): void;
}

/** Several rooms' readers read as one, in arrival order; readers may join while it is read. */
export function mergeReaders(): MergedReader {
  const readers = new Map<string, LogReader>();
  const ready: Logged[] = [];
  const closers: Array<() => void> = [];
  let wake: (() => void) | null = null;
  let closed = false;
  const pump = async (r: LogReader): Promise<void> => {
    for await (const m of r) {
      if (closed) break;
      ready.push(m);
      wake?.();
    }
  };
  return {
    add(room, r) {
      if (closed) {
        void r.close();
        return;
      }
      readers.set(room, r);
      void pump(r).catch(() => readers.delete(room));
    },
    onClose: (f) => void closers.push(f),
    async close() {
      closed = true;
      wake?.();
      closers.forEach((f) => f());
      await Promise.all([...readers.values()].map((r) => r.close()));
    },
    async *[Symbol.asyncIterator]() {
      while (!closed) {
        const m = ready.shift();
        if (m) {
          yield m;
          continue;
        }
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    },
  };
}
