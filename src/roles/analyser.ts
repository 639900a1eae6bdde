import type { Subscription } from 'rxjs';
import { z } from 'zod';
import { parseJson, type Bus, type BusMessage } from '../bus/bus.js';
import { AnalyserRequest, SfuBeat, type AnalyserBeat, type AnalyserReply, type StreamAnalysis } from '../bus/messages.js';
import { ACTIONS_DEMAND, analyserControl, ANALYSER_HEARTBEAT, SFU_HEARTBEAT, sfuControl } from '../bus/subjects.js';
import type { Config } from '../config.js';
import type { Metrics } from '../host/metrics.js';
import { analysisSize } from '../ingest/ffmpeg.js';
import { decodeRtp, type RtpSource } from '../ingest/rtp-source.js';
import { decoderSdp, freePortPair } from '../ingest/rtp-sdp.js';
import type { Logger } from '../log.js';
import type { EmotionPipeline, RunningStream } from '../pipeline/emotion-pipeline.js';
import { EventWriter, type WriterCounters } from './event-writer.js';
import { DEMAND_MS } from './gateway.js';
import { BEAT_MS, SFU_LEASE_MS } from './lease.js';

interface Held {
  stream: string;
  analysis: StreamAnalysis | undefined;
  room: string;
  sfu: string;
  source: RtpSource;
  running: RunningStream | null;
  sub: Subscription | null;
  log: Logger;
}

/** Events held per stream while the bus is down: about 25 s of one face at 10 fps. */
const WRITER_QUEUE = 256;
/** An event the log refuses for this long is given up (counted): the bus is not coming back soon. */
const WRITER_GIVE_UP_MS = 60_000;

const Demand = z.object({ gateway: z.string(), wanted: z.boolean() });

/**
 * The analyser role: announces itself and its free capacity every BEAT_MS, takes
 * streams an SFU asks it to analyse (the RTP comes straight from the SFU's plain
 * transport to a port of ours), and writes their events into the room's log. Streams of
 * an SFU that went quiet are ended. Facial actions are computed while any gateway says
 * a subscriber asks for them.
 */
export class AnalyserRole {
  private readonly held = new Map<string, Held>();
  private readonly sfuSeen = new Map<string, number>();
  private readonly demand = new Map<string, { wanted: boolean; at: number }>();
  private readonly subs: Array<{ unsubscribe(): void }> = [];
  private timer: NodeJS.Timeout | null = null;
  private actions = false;
  /** The bus was down at the last beat. */
  private blind = false;
  readonly counters = { started: 0, ended: 0, failed: 0, refused: 0, decoderRestarts: 0, actionsFused: 0, actionsUnusable: 0 };
  /** Events into the log: written, tried again, dropped (shared by every stream's writer). */
  readonly written: WriterCounters = { written: 0, retried: 0, dropped: 0 };

  constructor(
    private readonly bus: Bus,
    private readonly pipeline: EmotionPipeline,
    private readonly cfg: Config,
    private readonly log: Logger,
    readonly id: string,
    /** The address SFUs send RTP to. */
    private readonly address: string,
    private readonly health: string,
    private readonly metrics: Metrics,
  ) {
    metrics.gauge('arpgnet_streams_active', 'Streams being analysed', () => this.held.size);
    metrics.gauge('arpgnet_faces_active', 'Face tracks in analysed streams', () => this.faces());
    // past capacity every stream is analysed at a lower rate, none frozen: each stream's own
    // counts show it (decoded - analysed - dropped are the frames sampled out to the configured fps)
    metrics.gaugesLater(
      'arpgnet_stream_frames',
      'Frames of each analysed stream so far: decoded, analysed, dropped (its decoder ran ahead of the analysis)',
      ['stream', 'state'],
      () =>
        Promise.resolve(
          this.streams().flatMap((x) => [
            { of: [x.stream, 'decoded'] as const, value: x.decoded },
            { of: [x.stream, 'analysed'] as const, value: x.analysed },
            { of: [x.stream, 'dropped'] as const, value: x.dropped },
          ]),
        ),
    );
    // RSS that grows while these stay flat is native memory (bench:soak breaks it down by kind)
    metrics.gaugesLater(
      'arpgnet_worker_memory_bytes',
      "Each face worker thread's own V8 heap, and the external and array-buffer memory its isolate holds",
      ['worker', 'kind'],
      async () =>
        (await (pipeline.facePool?.memory() ?? Promise.resolve([]))).flatMap((m, i) =>
          m
            ? [
                { of: [String(i), 'heap'] as const, value: m.heap },
                { of: [String(i), 'external'] as const, value: m.external },
                { of: [String(i), 'array_buffers'] as const, value: m.arrayBuffers },
              ]
            : [],
        ),
    );
    metrics.total('arpgnet_decoder_restarts_total', 'Decoder restarts of analysed streams', () => this.restarts());
    metrics.totals(
      'arpgnet_actions_windows_total',
      'Windows read with the facial-actions branch (fused), and faces whose blendshapes it could not use (unusable)',
      'read',
      () => this.actionsRead(),
    );
    metrics.total('arpgnet_analysis_refused_total', 'Streams this analyser refused at analysis.maxStreams', () => this.counters.refused);
    metrics.total(
      'arpgnet_events_log_failed_total',
      'Events dropped unwritten to the event log (its queue was full, or it refused them past the give-up time)',
      () => this.written.dropped,
    );
    metrics.total(
      'arpgnet_events_log_retried_total',
      'Attempts to write an event to the log that failed and were tried again (the bus was down)',
      () => this.written.retried,
    );
  }

  start(): void {
    this.subs.push(this.bus.subscribe(analyserControl(this.id), (m) => void this.onRequest(m)));
    this.subs.push(
      this.bus.subscribe(SFU_HEARTBEAT, (m) => {
        const b = SfuBeat.safeParse(parseJson(m.data));
        if (b.success) this.sfuSeen.set(b.data.id, Date.now());
      }),
      this.bus.subscribe(ACTIONS_DEMAND, (m) => {
        const d = Demand.safeParse(parseJson(m.data));
        if (!d.success) return;
        this.demand.set(d.data.gateway, { wanted: d.data.wanted, at: Date.now() });
        this.checkDemand();
      }),
    );
    this.timer = setInterval(() => this.beat(), BEAT_MS);
    this.timer.unref();
    this.beat();
  }

  /** Facial actions while some gateway that is still heard from asks for them. */
  private checkDemand(): void {
    const now = Date.now();
    let wanted = false;
    for (const [g, d] of this.demand) {
      if (now - d.at > 3 * DEMAND_MS) this.demand.delete(g);
      else wanted ||= d.wanted;
    }
    if (wanted === this.actions) return;
    this.actions = wanted;
    for (const h of this.held.values()) this.applyActions(h);
    this.log.info({ on: wanted }, 'facial actions for subscribers');
  }

  private applyActions(h: Held): void {
    h.running?.faces
      ?.setActions(this.actions || this.cfg.analysis.actions)
      .catch((e: unknown) => h.log.warn({ err: e }, 'could not switch facial actions'));
  }

  private beat(): void {
    const b: AnalyserBeat = {
      id: this.id,
      pid: process.pid,
      address: this.address,
      capacity: this.cfg.serve.maxStreams,
      streams: [...this.held.keys()],
      health: this.health,
    };
    // cut off from the bus, the SFUs' silence says nothing: their streams go on (their events wait, event-writer.ts)
    if (!this.bus.up) {
      this.blind = true;
      return;
    }
    this.bus.publish(ANALYSER_HEARTBEAT, JSON.stringify(b));
    const now = Date.now();
    if (this.blind) {
      // back: each SFU gets a whole lease to be heard again
      this.blind = false;
      for (const sfu of this.sfuSeen.keys()) this.sfuSeen.set(sfu, now);
      for (const d of this.demand.values()) d.at = now;
    }
    for (const h of this.held.values()) {
      const seen = this.sfuSeen.get(h.sfu);
      if (seen !== undefined && now - seen > SFU_LEASE_MS) {
        h.log.warn('the SFU of this stream went quiet; ending it');
        this.stop(h.stream);
      }
    }
    this.checkDemand();
  }

  private async onRequest(m: BusMessage): Promise<void> {
    const reply = (r: AnalyserReply): void => m.respond?.(JSON.stringify(r));
    const req = AnalyserRequest.safeParse(parseJson(m.data));
    if (!req.success) return reply({ ok: false, error: `bad request: ${req.error.issues[0]?.message ?? ''}` });
    const r = req.data;
    if (r.op === 'stop') return reply({ ok: true, stopped: this.stop(r.stream) });
    if (r.op === 'calibrate') return reply({ ok: true, calibrated: this.held.get(r.stream)?.running?.state.calibrate(r.track) ?? false });
    if (this.held.has(r.stream)) this.stop(r.stream);
    if (this.held.size >= this.cfg.serve.maxStreams) {
      this.counters.refused++;
      return reply({ ok: false, error: `at capacity (${this.cfg.serve.maxStreams})` });
    }
    const log = this.log.child({ room: r.room, stream: r.stream });
    try {
      const port = await freePortPair(this.address);
      const size = analysisSize(r.width, r.height, this.cfg.analysis.maxSide);
      this.sfuSeen.set(r.sfu, Date.now());
      const source = decodeRtp(
        decoderSdp({ ...r.codec, parameters: r.codec.parameters ?? {} }, this.address, port),
        r.codec.mimeType,
        {
          requestKeyFrame: () => this.bus.publish(sfuControl(r.sfu), JSON.stringify({ op: 'keyframe', stream: r.stream })),
          start: async () => undefined,
          close: () => undefined,
        },
        {
          id: r.stream,
          uri: `webrtc:${r.room}/${encodeURIComponent(r.name)}`,
          ...size,
          maxRestarts: this.cfg.serve.decoderRestarts,
          log,
          maxFps: this.cfg.analysis.fps,
        },
      );
      const h: Held = { stream: r.stream, analysis: r.analysis, room: r.room, sfu: r.sfu, source, running: null, sub: null, log };
      this.held.set(r.stream, h);
      this.counters.started++;
      reply({ ok: true, ip: this.address, port, rtcpPort: port + 1, analyser: this.id, pid: process.pid });
      log.info({ sfu: r.sfu, port, ...size }, 'analysis started');
      await this.run(h);
    } catch (e) {
      log.error({ err: e }, 'could not analyse the stream');
      this.held.delete(r.stream);
      reply({ ok: false, error: (e as Error).message });
    }
  }

  private async run(h: Held): Promise<void> {
    const m = this.metrics;
    let decoded = 0;
    let dropped = 0;
    const asked = this.actions;
    const stream = await this.pipeline.analyse(h.source, {
      room: h.room,
      actions: asked,
      analysis: h.analysis,
      observe: (stage, ms) => {
        m.observe(stage, ms);
        if (stage === 'landmarks') m.frame('analysed'); // every analysed frame is landmarked once
      },
      onProgress: (n) => {
        m.frame('decoded', n - decoded);
        decoded = n;
        const d = h.source.stats().dropped;
        m.frame('dropped', d - dropped);
        dropped = d;
      },
    });
    h.running = stream;
    // a demand that changed while the stream was opening
    if (this.actions !== asked) this.applyActions(h);
    // in order, one at a time, retried while the bus is down (see event-writer.ts)
    const writer = new EventWriter(this.bus, { maxQueue: WRITER_QUEUE, giveUpMs: WRITER_GIVE_UP_MS, log: h.log }, this.written);
    const t0 = performance.now();
    let first = true;
    h.sub = stream.events$.subscribe({
      next: (e) => {
        m.event(e);
        if (first && e.type === 'emotion') {
          first = false;
          h.log.info({ ms: Math.round(performance.now() - t0), firstFrameMs: h.source.firstFrameMs }, 'first emotion event');
        }
        writer.write(e);
      },
      error: (e: unknown) => this.ended(h, e),
      complete: () => this.ended(h, null),
    });
  }

  private ended(h: Held, err: unknown): void {
    if (this.held.get(h.stream) === h) this.held.delete(h.stream);
    this.counters.ended++;
    this.counters.decoderRestarts += h.source.restarts;
    this.counters.actionsFused += h.running?.state.actionsFusion.fused ?? 0;
    this.counters.actionsUnusable += h.running?.state.actionsFusion.unusable ?? 0;
    h.source.stop();
    if (err) {
      this.counters.failed++;
      h.log.error({ err }, 'analysis of this stream failed');
    } else h.log.info({ restarts: h.source.restarts }, 'analysis ended');
  }

  private stop(stream: string): boolean {
    const h = this.held.get(stream);
    if (!h) return false;
    this.held.delete(stream);
    h.source.stop(); // the stream emits stream_end (stopped) and completes
    return true;
  }

  /** Face tracks alive in the analysed streams. */
  faces(): number {
    let n = 0;
    for (const h of this.held.values()) n += h.running?.state.tracks ?? 0;
    return n;
  }

  /** Decoder restarts, of ended and of running streams. */
  restarts(): number {
    let n = this.counters.decoderRestarts;
    for (const h of this.held.values()) n += h.source.restarts;
    return n;
  }

  /** The facial-actions branch's windows, of ended and of running streams. */
  actionsRead(): { fused: number; unusable: number } {
    let fused = this.counters.actionsFused;
    let unusable = this.counters.actionsUnusable;
    for (const h of this.held.values()) {
      fused += h.running?.state.actionsFusion.fused ?? 0;
      unusable += h.running?.state.actionsFusion.unusable ?? 0;
    }
    return { fused, unusable };
  }

  /** What each analysed stream is doing, for /healthz and operators. */
  streams(): Array<{
    stream: string;
    room: string;
    sfu: string;
    decoded: number;
    analysed: number;
    dropped: number;
    restarts: number;
    firstFrameMs: number | null;
  }> {
    return [...this.held.values()].map((h) => ({
      stream: h.stream,
      room: h.room,
      sfu: h.sfu,
      decoded: h.source.stats().decoded,
      analysed: h.running?.state.analysed ?? 0,
      dropped: h.source.stats().dropped,
      restarts: h.source.restarts,
      firstFrameMs: h.source.firstFrameMs == null ? null : Math.round(h.source.firstFrameMs),
    }));
  }

  healthSection(): Record<string, unknown> {
    return {
      capacity: this.cfg.serve.maxStreams,
      actions: this.actions,
      counters: {
        ...this.counters,
        published: this.written.written,
        publishRetried: this.written.retried,
        publishFailed: this.written.dropped,
      },
      streams: this.streams(),
    };
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    const done = [...this.held.values()].map(
      (h) =>
        new Promise<void>((resolve) => {
          if (!h.sub) return resolve();
          h.sub.add(() => resolve());
        }),
    );
    for (const k of [...this.held.keys()]) this.stop(k);
    // the last stream_end events reach the log
    await Promise.race([Promise.all(done), new Promise((r) => setTimeout(r, 3000))]);
    await new Promise((r) => setTimeout(r, 50));
  }
}
