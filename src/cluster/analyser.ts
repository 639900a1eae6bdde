import type { Subscription } from 'rxjs';
import { parseJson, type Bus, type BusMessage } from '../bus/bus.js';
import { AnalyserRequest, SfuBeat, type AnalyserBeat, type AnalyserReply } from '../bus/messages.js';
import { analyserControl, ANALYSER_HEARTBEAT, SFU_HEARTBEAT, sfuControl } from '../bus/subjects.js';
import type { Config } from '../config.js';
import { analysisSize } from '../ingest/ffmpeg.js';
import { decodeRtp, type RtpSource } from '../ingest/rtp-source.js';
import { decoderSdp, freePortPair } from '../ingest/rtp-sdp.js';
import type { Logger } from '../log.js';
import type { EmotionPipeline } from '../pipeline/emotion-pipeline.js';

/** How often roles say they are alive, and how long silence means dead (the lease). */
export const BEAT_MS = 200;
export const LEASE_MS = 800;
/** An SFU silent this long is gone: its streams end here. */
const SFU_LEASE_MS = 3000;

interface Held {
  stream: string;
  room: string;
  sfu: string;
  source: RtpSource;
  sub: Subscription | null;
}

/**
 * The analyser role: announces itself and its free capacity every BEAT_MS, takes
 * streams an SFU asks it to analyse (the RTP comes straight from the SFU's plain
 * transport to a port of ours), and writes their events into the room's JetStream
 * stream. Streams of an SFU that went quiet are ended.
 */
export class AnalyserRole {
  private readonly held = new Map<string, Held>();
  private readonly sfuSeen = new Map<string, number>();
  private readonly subs: Array<{ unsubscribe(): void }> = [];
  private timer: NodeJS.Timeout | null = null;
  published = 0;
  publishFailed = 0;

  constructor(
    private readonly bus: Bus,
    private readonly pipeline: EmotionPipeline,
    private readonly cfg: Config,
    private readonly log: Logger,
    readonly id: string,
    /** The address SFUs send RTP to. */
    private readonly address: string,
    private readonly health: string,
  ) {}

  start(): void {
    this.subs.push(this.bus.subscribe(analyserControl(this.id), (m) => void this.onRequest(m)));
    this.subs.push(
      this.bus.subscribe(SFU_HEARTBEAT, (m) => {
        const b = SfuBeat.safeParse(parseJson(m.data));
        if (b.success) this.sfuSeen.set(b.data.id, Date.now());
      }),
    );
    this.timer = setInterval(() => this.beat(), BEAT_MS);
    this.timer.unref();
    this.beat();
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
    if (this.bus.up) this.bus.publish(ANALYSER_HEARTBEAT, JSON.stringify(b));
    const now = Date.now();
    for (const h of this.held.values()) {
      const seen = this.sfuSeen.get(h.sfu);
      if (seen !== undefined && now - seen > SFU_LEASE_MS) {
        this.log.warn({ stream: h.stream, sfu: h.sfu }, 'the SFU of this stream went quiet; ending it');
        this.stop(h.stream);
      }
    }
  }

  private async onRequest(m: BusMessage): Promise<void> {
    const reply = (r: AnalyserReply): void => m.respond?.(JSON.stringify(r));
    const req = AnalyserRequest.safeParse(parseJson(m.data));
    if (!req.success) return reply({ ok: false, error: `bad request: ${req.error.issues[0]?.message ?? ''}` });
    const r = req.data;
    if (r.op === 'stop') return reply({ ok: true, stopped: this.stop(r.stream) });
    if (this.held.has(r.stream)) this.stop(r.stream);
    if (this.held.size >= this.cfg.serve.maxStreams) return reply({ ok: false, error: `at capacity (${this.cfg.serve.maxStreams})` });
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
          log: this.log,
          maxFps: this.cfg.analysis.fps,
        },
      );
      const h: Held = { stream: r.stream, room: r.room, sfu: r.sfu, source, sub: null };
      this.held.set(r.stream, h);
      reply({ ok: true, ip: this.address, port, rtcpPort: port + 1, analyser: this.id, pid: process.pid });
      this.log.info({ stream: r.stream, room: r.room, sfu: r.sfu, port }, 'analysing a stream for an SFU');
      await this.run(h);
    } catch (e) {
      this.log.error({ stream: r.stream, err: (e as Error).message }, 'could not analyse the stream');
      this.held.delete(r.stream);
      reply({ ok: false, error: (e as Error).message });
    }
  }

  private async run(h: Held): Promise<void> {
    const stream = await this.pipeline.analyse(h.source, { room: h.room });
    // events go out in order: each publish waits for the one before (JetStream acks them)
    let chain: Promise<void> = Promise.resolve();
    const t0 = performance.now();
    let first = true;
    h.sub = stream.events$.subscribe({
      next: (e) => {
        if (first && e.type === 'emotion') {
          first = false;
          this.log.info(
            { stream: h.stream, ms: Math.round(performance.now() - t0), firstFrameMs: h.source.firstFrameMs },
            'first emotion event',
          );
        }
        chain = chain.then(() =>
          this.bus.publishEvent(e).then(
            () => void this.published++,
            (err: unknown) => {
              this.publishFailed++;
              this.log.warn({ stream: h.stream, err: (err as Error).message }, 'event not written to the log');
            },
          ),
        );
      },
      error: (e: unknown) => this.ended(h, e),
      complete: () => this.ended(h, null),
    });
  }

  private ended(h: Held, err: unknown): void {
    if (this.held.get(h.stream) === h) this.held.delete(h.stream);
    if (err) this.log.error({ stream: h.stream, err: (err as Error).message }, 'analysis of this stream failed');
    else this.log.info({ stream: h.stream }, 'analysis ended');
  }

  private stop(stream: string): boolean {
    const h = this.held.get(stream);
    if (!h) return false;
    this.held.delete(stream);
    h.source.stop(); // the stream emits stream_end (stopped) and completes
    return true;
  }

  streams(): Array<{ stream: string; room: string; sfu: string; decoded: number; restarts: number }> {
    return [...this.held.values()].map((h) => ({
      stream: h.stream,
      room: h.room,
      sfu: h.sfu,
      decoded: h.source.stats().decoded,
      restarts: h.source.restarts,
    }));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    for (const k of [...this.held.keys()]) this.stop(k);
    await new Promise((r) => setTimeout(r, 200)); // the last stream_end events reach the log
  }
}
