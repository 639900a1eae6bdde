import type { Subscription } from 'rxjs';
import type { types } from 'mediasoup';
import type { Config } from '../config.js';
import { analysisPicture, type LayerChoice } from '../sfu/layers.js';
import { openRtpSource, type RtpSource } from '../ingest/rtp-source.js';
import type { Logger } from '../log.js';
import type { StreamAnalyser } from '../pipeline/analyser.js';
import type { EmotionPipeline } from '../pipeline/emotion-pipeline.js';
import type { Landmarker } from '../pipeline/landmark-pool.js';
import type { PipelineEvent } from '../publish/events.js';
import type { Peer, Room } from '../sfu/room.js';
import type { Metrics } from './metrics.js';
import { consentPlan, type AnalysisControl } from '../sfu/signaling.js';

interface Running {
  landmarks: Landmarker | null;
  producerId: string;
  room: Room;
  source: RtpSource | null;
  analyser: StreamAnalyser | null;
  sub: Subscription | null;
  stopped: boolean;
  layer: LayerChoice | null;
}

export interface LiveCounters {
  started: number;
  ended: number;
  refused: number;
  failed: number;
  decoderRestarts: number;
}

/**
 * Decides which producers are analysed and runs one pipeline stream for each: a
 * video producer is analysed while its owner consents and it is not paused. Nothing
 * of anyone else is ever decoded. A stream that fails ends on its own; the others go on.
 */
export class LiveAnalysis implements AnalysisControl {
  private readonly running = new Map<string, Running>();
  readonly counters: LiveCounters = { started: 0, ended: 0, refused: 0, failed: 0, decoderRestarts: 0 };

  constructor(
    private readonly pipeline: EmotionPipeline,
    private readonly publish: (e: PipelineEvent) => void,
    private readonly cfg: Config,
    private readonly log: Logger,
    private readonly metrics?: Metrics | undefined,
  ) {}

  private actions = false;

  /** Facial actions (blendshapes) are computed only while some subscriber asks for them. */
  setActions(on: boolean): void {
    this.actions = on;
    for (const r of this.running.values())
      r.landmarks
        ?.setActions(on || this.cfg.analysis.actions)
        .catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'could not switch facial actions'));
    this.log.info({ on }, 'facial actions for subscribers');
  }

  /** Face tracks alive in the analysed streams. */
  faces(): number {
    let n = 0;
    for (const r of this.running.values()) n += r.analyser?.tracks ?? 0;
    return n;
  }

  /** Decoder restarts, of ended and of running streams. */
  restarts(): number {
    let n = this.counters.decoderRestarts;
    for (const r of this.running.values()) n += r.source?.restarts ?? 0;
    return n;
  }

  isAnalysed(producerId: string): boolean {
    return this.running.has(producerId);
  }

  get active(): number {
    return this.running.size;
  }

  /** What each analysed stream is doing, for /healthz and operators. */
  streams(): Array<{
    producerId: string;
    room: string;
    decoded: number;
    analysed: number;
    dropped: number;
    restarts: number;
    firstFrameMs: number | null;
    /** The simulcast layer decoded (null: the producer sends one). */
    layer: LayerChoice | null;
  }> {
    return [...this.running.values()].map((r) => ({
      producerId: r.producerId,
      room: r.room.id,
      decoded: r.source?.stats().decoded ?? 0,
      analysed: r.analyser?.analysed ?? 0,
      dropped: r.source?.stats().dropped ?? 0,
      restarts: r.source?.restarts ?? 0,
      firstFrameMs: r.source?.firstFrameMs == null ? null : Math.round(r.source.firstFrameMs),
      layer: r.layer,
    }));
  }

  sync(room: Room, peer: Peer): void {
    const plan = consentPlan(room, peer, this.running);
    for (const id of plan.stop) this.stop(id, room);
    for (const p of plan.start) this.start(room, peer, p);
  }

  private start(room: Room, peer: Peer, producer: types.Producer): void {
    if (this.running.size >= this.cfg.serve.maxStreams) {
      this.counters.refused++;
      this.log.warn({ producer: producer.id, limit: this.cfg.serve.maxStreams }, 'analysis refused: stream limit reached');
      return;
    }
    const r: Running = {
      landmarks: null,
      producerId: producer.id,
      room,
      source: null,
      analyser: null,
      sub: null,
      stopped: false,
      layer: null,
    };
    this.running.set(producer.id, r);
    this.counters.started++;
    room.broadcast({ method: 'analysis', data: { producerId: producer.id, analysed: true } });
    const picture = analysisPicture(producer, this.cfg.analysis.maxSide, this.cfg.analysis.layer);
    r.layer = picture.layer;
    const size = { width: picture.width, height: picture.height };
    const t0 = performance.now();
    const go = async (): Promise<void> => {
      const source = await openRtpSource(room.router, producer, {
        id: producer.id,
        uri: `webrtc:${room.id}/${encodeURIComponent(peer.name)}`,
        ...size,
        maxRestarts: this.cfg.serve.decoderRestarts,
        log: this.log,
        maxFps: this.cfg.analysis.fps,
        preferredLayers: picture.preferredLayers,
      });
      r.source = source;
      if (r.stopped) return source.stop();
      const m = this.metrics;
      let decoded = 0;
      let dropped = 0;
      const stream = await this.pipeline.analyse(source, {
        room: room.id,
        actions: this.actions,
        observe:
          m &&
          ((stage, ms) => {
            m.observe(stage, ms);
            if (stage === 'landmarks') m.frame('analysed'); // every analysed frame is landmarked once
          }),
        onProgress:
          m &&
          ((n) => {
            m.frame('decoded', n - decoded);
            decoded = n;
            const d = source.stats().dropped;
            m.frame('dropped', d - dropped);
            dropped = d;
          }),
      });
      r.analyser = stream.analyser;
      r.landmarks = stream.landmarks;
      if (r.stopped) return source.stop();
      let first = true;
      r.sub = stream.events$.subscribe({
        next: (e) => {
          if (first && e.type === 'emotion') {
            first = false;
            this.log.info({ producer: producer.id, ms: Math.round(performance.now() - t0) }, 'first emotion event');
          }
          this.publish(e);
        },
        error: (e: unknown) => this.ended(r, e),
        complete: () => this.ended(r, null),
      });
    };
    this.log.info({ room: room.id, peer: peer.id, producer: producer.id, ...size }, 'analysis started');
    go().catch((e: unknown) => this.ended(r, e));
  }

  private ended(r: Running, err: unknown): void {
    if (this.running.get(r.producerId) === r) this.running.delete(r.producerId);
    this.counters.ended++;
    this.counters.decoderRestarts += r.source?.restarts ?? 0;
    r.source?.stop();
    if (err) {
      this.counters.failed++;
      this.log.error({ producer: r.producerId, err: (err as Error).message }, 'analysis of this stream failed');
    } else {
      this.log.info({ producer: r.producerId, restarts: r.source?.restarts ?? 0 }, 'analysis ended');
    }
    if (!r.stopped) r.room.broadcast({ method: 'analysis', data: { producerId: r.producerId, analysed: false } });
  }

  private stop(producerId: string, room: Room): void {
    const r = this.running.get(producerId);
    if (!r) return;
    r.stopped = true;
    // forget it now, so a resume right after starts a fresh stream
    this.running.delete(producerId);
    // the source ends its frames; the stream then emits stream_end and completes
    r.source?.stop();
    room.broadcast({ method: 'analysis', data: { producerId, analysed: false } });
  }

  async close(): Promise<void> {
    const waiting = [...this.running.values()].map(
      (r) =>
        new Promise<void>((resolve) => {
          r.stopped = true;
          if (!r.sub) return resolve();
          r.sub.add(() => resolve());
          r.source?.stop();
        }),
    );
    for (const r of this.running.values()) r.source?.stop();
    await Promise.race([Promise.all(waiting), new Promise((resolve) => setTimeout(resolve, 3000))]);
  }
}
