import type { types } from 'mediasoup';
import { parseJson, requestJson, type Bus } from '../bus/bus.js';
import { AnalyserBeat, AnalyserReply, SfuRequest, type SfuBeat } from '../bus/messages.js';
import { analyserControl, ANALYSER_HEARTBEAT, SFU_HEARTBEAT, sfuControl } from '../bus/subjects.js';
import { decoderCapabilities } from '../ingest/rtp-sdp.js';
import type { Logger } from '../log.js';
import { failoverEnd } from '../publish/envelopes.js';
import type { Peer, Room } from '../sfu/room.js';
import { consentPlan, type AnalysisControl } from '../sfu/signaling.js';
import { analysisPicture, type LayerChoice } from '../sfu/layers.js';
import { BEAT_MS, LEASE_MS } from './lease.js';

interface Analysed {
  room: Room;
  peer: Peer;
  producer: types.Producer;
  analyser: string | null;
  pid: number | null;
  transport: types.PlainTransport | null;
  consumer: types.Consumer | null;
  assigning: boolean;
  stopped: boolean;
  failovers: number;
  /** No analyser had room for it: said and counted once, retried every beat. */
  waiting: boolean;
  /** The simulcast layer sent to the analyser (null: the producer sends one). */
  layer: LayerChoice | null;
}

interface Seen {
  beat: AnalyserBeat;
  at: number;
}

/**
 * The SFU side of scale-out: decides which producers are analysed (the same rule as
 * in one process: a consenting owner, not paused), hands each to the least loaded live
 * analyser and sends it the media over a PlainTransport. An analyser whose heartbeats
 * stop for LEASE_MS loses its streams: a stream_end (failover) goes into the room's
 * log and the stream moves to another analyser.
 */
export class StreamPlacement implements AnalysisControl {
  private readonly running = new Map<string, Analysed>();
  private readonly analysers = new Map<string, Seen>();
  private readonly subs: Array<{ unsubscribe(): void }> = [];
  private timer: NodeJS.Timeout | null = null;
  /** The bus was down at the last tick. */
  private blind = false;
  readonly counters = { started: 0, ended: 0, failovers: 0, refused: 0 };

  constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
    readonly id: string,
    private readonly listenIp: string,
    /** Which simulcast layer analysers decode (analysis.layer). */
    private readonly layer: LayerChoice = 'low',
  ) {}

  start(): void {
    this.subs.push(
      this.bus.subscribe(ANALYSER_HEARTBEAT, (m) => {
        const b = AnalyserBeat.safeParse(parseJson(m.data));
        if (b.success) this.analysers.set(b.data.id, { beat: b.data, at: Date.now() });
      }),
      this.bus.subscribe(sfuControl(this.id), (m) => {
        const r = SfuRequest.safeParse(parseJson(m.data));
        if (r.success)
          void this.running
            .get(r.data.stream)
            ?.consumer?.requestKeyFrame()
            .catch(() => undefined);
      }),
    );
    this.timer = setInterval(() => this.tick(), BEAT_MS);
    this.timer.unref();
  }

  private tick(): void {
    // cut off from the bus, this SFU hears nobody: silence then says nothing about the
    // analysers, and expiring their leases would move every stream for a blip of NATS's
    if (!this.bus.up) {
      this.blind = true;
      return;
    }
    const now = Date.now();
    if (this.blind) {
      // back: each analyser gets a whole lease to be heard again
      this.blind = false;
      for (const a of this.analysers.values()) a.at = now;
    }
    const beat: SfuBeat = { id: this.id, pid: process.pid };
    this.bus.publish(SFU_HEARTBEAT, JSON.stringify(beat));
    for (const [id, a] of this.analysers) {
      if (now - a.at <= LEASE_MS) continue;
      this.analysers.delete(id);
      this.log.warn({ analyser: id, pid: a.beat.pid }, 'analyser lease expired');
      for (const r of this.running.values()) if (r.analyser === id) this.failover(r);
    }
    // streams waiting for an analyser (none had room, or NATS was down) try again
    for (const r of this.running.values()) if (!r.analyser && !r.assigning && !r.stopped) void this.assign(r);
  }

  isAnalysed(producerId: string): boolean {
    return this.running.has(producerId);
  }

  /** Asks the stream's analyser for a new personal baseline of its faces; false when it has no such face (or no analyser yet). */
  async calibrate(producerId: string, track?: string): Promise<boolean> {
    const analyser = this.running.get(producerId)?.analyser;
    if (!analyser) return false;
    const reply = AnalyserReply.safeParse(
      await requestJson<unknown>(this.bus, analyserControl(analyser), { op: 'calibrate', stream: producerId, track }, 2000).catch(
        () => null,
      ),
    );
    return reply.success && 'calibrated' in reply.data && reply.data.calibrated;
  }

  get active(): number {
    return this.running.size;
  }

  sync(room: Room, peer: Peer): void {
    const plan = consentPlan(room, peer, this.running);
    for (const id of plan.stop) this.stop(id);
    for (const p of plan.start) {
      const r: Analysed = {
        room,
        peer,
        producer: p,
        analyser: null,
        pid: null,
        transport: null,
        consumer: null,
        assigning: false,
        stopped: false,
        failovers: 0,
        waiting: false,
        layer: null,
      };
      this.running.set(p.id, r);
      this.counters.started++;
      room.broadcast({ method: 'analysis', data: { producerId: p.id, analysed: true } });
      void this.assign(r);
    }
  }

  /** Least loaded first; an analyser that refuses or does not answer is skipped. */
  private candidates(): AnalyserBeat[] {
    return [...this.analysers.values()]
      .map((a) => a.beat)
      .filter((b) => b.streams.length < b.capacity)
      .sort((a, b) => a.streams.length / a.capacity - b.streams.length / b.capacity);
  }

  private async assign(r: Analysed): Promise<void> {
    if (!this.bus.up) return;
    r.assigning = true;
    let transport: types.PlainTransport | null = null;
    try {
      transport = await r.room.router.createPlainTransport({
        listenInfo: { protocol: 'udp', ip: this.listenIp },
        rtcpMux: false,
        comedia: false,
      });
      // the layer's own size: each analyser fits it to its analysis size
      const picture = analysisPicture(r.producer, Infinity, this.layer);
      r.layer = picture.layer;
      const consumer = await transport.consume({
        producerId: r.producer.id,
        rtpCapabilities: decoderCapabilities(r.producer),
        paused: true,
        ...(picture.preferredLayers ? { preferredLayers: picture.preferredLayers } : {}),
      });
      const codec = consumer.rtpParameters.codecs[0]!;
      for (const a of this.candidates()) {
        if (r.stopped) break;
        const reply = await requestJson<unknown>(this.bus, analyserControl(a.id), {
          op: 'start',
          sfu: this.id,
          room: r.room.id,
          stream: r.producer.id,
          name: r.peer.name,
          analysis: r.peer.analysis,
          width: picture.width,
          height: picture.height,
          codec: {
            mimeType: codec.mimeType,
            payloadType: codec.payloadType,
            clockRate: codec.clockRate,
            parameters: codec.parameters ?? {},
          },
        })
          .then((x) => AnalyserReply.parse(x))
          .catch((e: unknown) => ({ ok: false as const, error: (e as Error).message }));
        if (!reply.ok || !('port' in reply)) {
          this.log.info({ analyser: a.id, stream: r.producer.id, err: 'error' in reply ? reply.error : '' }, 'analyser declined');
          continue;
        }
        // from here the analyser holds the stream: whatever happens next, it is told when it must let go
        const ended = (): boolean => r.stopped;
        try {
          if (ended()) throw new Error('the stream ended while its analyser was starting it');
          await transport.connect({ ip: reply.ip, port: reply.port, rtcpPort: reply.rtcpPort });
          await consumer.resume();
          if (ended()) throw new Error('the stream ended while it was being connected');
        } catch (e) {
          this.release(reply.analyser, r.producer.id);
          if (r.stopped) break;
          throw e;
        }
        void consumer.requestKeyFrame().catch(() => undefined);
        a.streams.push(r.producer.id); // counted until its next heartbeat says so itself
        Object.assign(r, { analyser: reply.analyser, pid: reply.pid, transport, consumer, waiting: false });
        this.log.info({ stream: r.producer.id, analyser: reply.analyser, pid: reply.pid }, 'stream assigned');
        transport = null; // the stream's now: closed by stop()
        return;
      }
      if (r.stopped) return;
      if (!r.waiting) {
        r.waiting = true;
        this.counters.refused++;
        this.log.warn({ stream: r.producer.id, analysers: this.analysers.size }, 'no analyser has room for this stream; it waits for one');
      }
    } catch (e) {
      this.log.error({ stream: r.producer.id, err: e }, 'assigning the stream failed; will retry');
    } finally {
      // a transport that did not become the stream's (declined, stopped meanwhile, failed) goes now
      transport?.close();
      r.assigning = false;
    }
  }

  /** Tells an analyser to let go of a stream (it stops it, or never had it). */
  private release(analyser: string, stream: string): void {
    void requestJson(this.bus, analyserControl(analyser), { op: 'stop', stream }, 1000).catch(() => undefined);
  }

  /** The analyser is gone: say so in the room's log, then let another one continue the stream. */
  private failover(r: Analysed): void {
    this.counters.failovers++;
    r.failovers++;
    const end = failoverEnd(r.room.id, r.producer.id);
    void this.bus.publishEvent(end).catch((e: unknown) => this.log.warn({ err: e }, 'failover notice not written'));
    r.transport?.close();
    Object.assign(r, { analyser: null, pid: null, transport: null, consumer: null });
    void this.assign(r);
  }

  private stop(producerId: string, quiet = false): void {
    const r = this.running.get(producerId);
    if (!r) return;
    r.stopped = true;
    this.running.delete(producerId);
    this.counters.ended++;
    if (r.analyser) this.release(r.analyser, producerId);
    r.transport?.close();
    if (!quiet) r.room.broadcast({ method: 'analysis', data: { producerId, analysed: false } });
  }

  /** Each analysed stream with the analyser (and its process) holding it, for /healthz. */
  streams(): Array<{
    producerId: string;
    room: string;
    analyser: string | null;
    pid: number | null;
    failovers: number;
    waiting: boolean;
    layer: LayerChoice | null;
  }> {
    return [...this.running.values()].map((r) => ({
      producerId: r.producer.id,
      room: r.room.id,
      analyser: r.analyser,
      pid: r.pid,
      failovers: r.failovers,
      waiting: r.waiting,
      layer: r.layer,
    }));
  }

  analyserList(): Array<{ id: string; pid: number; streams: number; capacity: number; health: string }> {
    return [...this.analysers.values()].map(({ beat: b }) => ({
      id: b.id,
      pid: b.pid,
      streams: b.streams.length,
      capacity: b.capacity,
      health: b.health,
    }));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const id of [...this.running.keys()]) this.stop(id, true);
    for (const s of this.subs) s.unsubscribe();
    await Promise.resolve();
  }
}
