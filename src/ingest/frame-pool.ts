import type { Frame } from './frame.js';

export type QueuePolicy = 'block' | 'drop-oldest';

/**
 * Hands decoded frames from a producer to one consumer through a fixed set of
 * buffers. `block` (files) pauses the producer while all buffers are busy;
 * `drop-oldest` (live sources) replaces a frame the consumer has not taken yet,
 * so a slow consumer always gets the newest frame and memory never grows.
 */
export class FramePool {
  private readonly free: Buffer[] = [];
  private readonly ready: Array<{ frame: Frame; buf: Buffer }> = [];
  private waiter: ((v: { frame: Frame; buf: Buffer } | null) => void) | null = null;
  private spaceWaiter: (() => void) | null = null;
  private ended = false;
  dropped = 0;

  constructor(
    readonly frameBytes: number,
    private readonly policy: QueuePolicy,
    private readonly capacity = policy === 'block' ? 3 : 1,
  ) {
    // shared memory: a landmark worker thread reads the frame where the decoder wrote it
    for (let i = 0; i < capacity + 2; i++) this.free.push(Buffer.from(new SharedArrayBuffer(frameBytes)));
  }

  /** A buffer to decode into, or null when the producer must wait (block policy). */
  acquire(): Buffer | null {
    const b = this.free.pop();
    if (b) return b;
    if (this.policy === 'drop-oldest' && this.ready.length) {
      this.dropped++;
      return this.ready.shift()!.buf;
    }
    return null;
  }

  waitForSpace(): Promise<void> {
    return new Promise((resolve) => (this.spaceWaiter = resolve));
  }

  push(frame: Frame, buf: Buffer): void {
    const item = { frame, buf };
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(item);
      return;
    }
    this.ready.push(item);
    while (this.policy === 'drop-oldest' && this.ready.length > this.capacity) {
      this.free.push(this.ready.shift()!.buf);
      this.dropped++;
    }
  }

  end(): void {
    this.ended = true;
    this.waiter?.(null);
    this.waiter = null;
  }

  release(buf: Buffer): void {
    this.free.push(buf);
    const w = this.spaceWaiter;
    this.spaceWaiter = null;
    w?.();
  }

  next(): Promise<{ frame: Frame; buf: Buffer } | null> {
    const item = this.ready.shift();
    if (item) return Promise.resolve(item);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }
}
