import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

/** What the relay does to each packet from the sender, all seeded so a run can be repeated. */
export interface Impairment {
  /** Fraction of packets dropped (0..1). */
  loss: number;
  /** Fraction of packets held back and sent after the next one. */
  reorder: number;
  /** Added one-way delay, with uniform jitter on top. */
  delayMs: number;
  jitterMs: number;
  seed: number;
}

export const CLEAN: Impairment = { loss: 0, reorder: 0, delayMs: 0, jitterMs: 0, seed: 1 };

/** mulberry32: a small seeded generator, so a loss pattern is the same on every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A loopback UDP relay between an RTP sender and the SFU: the sender sends to `port`,
 * the relay forwards from one socket of its own (so a comedia transport learns one
 * address), dropping, reordering and delaying as told; packets back from the SFU go to
 * the last sender address. `inject` sends bytes to the SFU on the same tuple: how
 * garbage reaches an analysed stream's transport.
 */
export class UdpRelay {
  readonly stats = { forwarded: 0, dropped: 0, reordered: 0, injected: 0 };
  private held: Buffer | null = null;
  private sender: RemoteInfo | null = null;
  private readonly rand: () => number;
  private closed = false;
  /** Replaced by tests to rewrite packets on their way (return null to drop). */
  transform: ((b: Buffer) => Buffer | null) | null = null;

  private constructor(
    private readonly inbound: Socket,
    private readonly outbound: Socket,
    private readonly target: { ip: string; port: number },
    public impairment: Impairment,
  ) {
    this.rand = seeded(impairment.seed);
    inbound.on('message', (b, from) => {
      this.sender = from;
      this.fromSender(b);
    });
    outbound.on('message', (b) => {
      if (this.sender) inbound.send(b, this.sender.port, this.sender.address);
    });
  }

  static async open(target: { ip: string; port: number }, impairment: Impairment = CLEAN): Promise<UdpRelay> {
    const bind = (s: Socket): Promise<void> => new Promise((r) => s.bind(0, '127.0.0.1', () => r()));
    const inbound = createSocket('udp4');
    const outbound = createSocket('udp4');
    await Promise.all([bind(inbound), bind(outbound)]);
    return new UdpRelay(inbound, outbound, target, impairment);
  }

  get port(): number {
    return this.inbound.address().port;
  }

  private fromSender(b: Buffer): void {
    const im = this.impairment;
    if (this.rand() < im.loss) {
      this.stats.dropped++;
      return;
    }
    const out = this.transform ? this.transform(b) : b;
    if (!out) {
      this.stats.dropped++;
      return;
    }
    if (!this.held && this.rand() < im.reorder) {
      this.held = out; // goes out right after the next packet
      this.stats.reordered++;
      return;
    }
    this.later(out);
    if (this.held) {
      const h = this.held;
      this.held = null;
      this.later(h);
    }
  }

  private later(b: Buffer): void {
    const ms = this.impairment.delayMs + this.rand() * this.impairment.jitterMs;
    if (ms <= 0) return this.send(b);
    setTimeout(() => this.send(b), ms).unref();
  }

  private send(b: Buffer): void {
    if (this.closed) return;
    this.stats.forwarded++;
    this.outbound.send(b, this.target.port, this.target.ip);
  }

  inject(b: Buffer): void {
    if (this.closed) return;
    this.stats.injected++;
    this.outbound.send(b, this.target.port, this.target.ip);
  }

  close(): void {
    this.closed = true;
    this.inbound.close();
    this.outbound.close();
  }
}
