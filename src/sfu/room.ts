import type { StreamAnalysis } from '../bus/messages.js';
import type { Logger } from '../log.js';
import type { types } from 'mediasoup';
import type { Notification, ProducerInfo } from './protocol.js';

/** One participant: the transports, producers and consumers they own, and their analysis consent. */
export class Peer {
  readonly transports = new Map<string, types.WebRtcTransport | types.PlainTransport>();
  readonly producers = new Map<string, types.Producer>();
  readonly consumers = new Map<string, types.Consumer>();
  /** Set once it has left: what a request still in flight makes for it afterwards is closed, not kept. */
  closed = false;

  constructor(
    readonly id: string,
    readonly name: string,
    public consent: boolean,
    readonly notify: (n: Notification) => void,
    /** Its own analysis settings from its join (empty: the server's). */
    readonly analysis: StreamAnalysis = {},
  ) {}

  info(p: types.Producer): ProducerInfo {
    return {
      producerId: p.id,
      peerId: this.id,
      name: this.name,
      kind: p.kind,
      paused: p.paused,
      analysed: this.consent && p.kind === 'video',
    };
  }

  /**
   * Keeps a transport made for this peer, or closes it (false) when the peer left while it
   * was being made: nobody would ever close it, and it holds UDP ports.
   */
  adopt(t: types.WebRtcTransport | types.PlainTransport): boolean {
    if (this.closed) {
      t.close();
      return false;
    }
    this.transports.set(t.id, t);
    // both kinds' observers emit close; the union of their typed emitters is not callable as one
    (t.observer as types.Transport['observer']).once('close', () => this.transports.delete(t.id));
    return true;
  }

  /**
   * The same for a producer or consumer: made on a transport that closed while it was
   * being made (the peer left), mediasoup's object is never closed by the transport, and
   * would stay open, counted, for as long as the process lives.
   */
  keeps(x: types.Producer | types.Consumer, on: types.Transport): boolean {
    if (!this.closed && !on.closed) return true;
    x.close();
    return false;
  }

  /** Closing a transport closes what was produced and consumed on it. */
  close(): void {
    this.closed = true;
    for (const t of this.transports.values()) t.close();
    this.transports.clear();
    this.producers.clear();
    this.consumers.clear();
  }
}

/** A call: one mediasoup Router and its peers. */
export class Room {
  readonly peers = new Map<string, Peer>();
  private readonly onClosed = new Set<() => void>();

  constructor(
    readonly id: string,
    readonly router: types.Router,
    /** Says the room in every line, whoever logs about it. */
    readonly log: Logger,
  ) {}

  /** Called once if the room dies under its peers (its router closed without them leaving). */
  whenClosed(f: () => void): () => void {
    this.onClosed.add(f);
    return () => this.onClosed.delete(f);
  }

  closed(): void {
    for (const f of [...this.onClosed]) f();
    this.onClosed.clear();
  }

  broadcast(n: Notification, except?: Peer): void {
    for (const p of this.peers.values()) if (p !== except) p.notify(n);
  }

  producers(except?: Peer): ProducerInfo[] {
    const out: ProducerInfo[] = [];
    for (const peer of this.peers.values()) {
      if (peer === except) continue;
      for (const p of peer.producers.values()) out.push(peer.info(p));
    }
    return out;
  }

  findProducer(producerId: string): { peer: Peer; producer: types.Producer } | null {
    for (const peer of this.peers.values()) {
      const producer = peer.producers.get(producerId);
      if (producer) return { peer, producer };
    }
    return null;
  }
}
