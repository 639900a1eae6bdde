import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Stage } from '../pipeline/analyser.js';
import type { PipelineEvent } from '../publish/events.js';
import type { EventHub } from '../publish/ws-hub.js';
import type { WorkerPool } from '../sfu/workers.js';
import type { Authenticator } from './auth.js';
import type { LiveAnalysis } from './live-analysis.js';
import type { Limits } from './limits.js';

/** Stages timed per analysed frame (decode happens inside ffmpeg: its frames are counted, not timed). */
export type { Stage } from '../pipeline/analyser.js';

const MS_BUCKETS = [1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 250, 500, 1000, 2500];

/** /metrics in Prometheus text format: stage latencies, frame and event counts, live gauges, process metrics. */
export class Metrics {
  readonly registry = new Registry();
  private readonly stage = new Histogram({
    name: 'arpgnet_stage_ms',
    help: 'Time per analysed frame spent in a pipeline stage, in milliseconds',
    labelNames: ['stage'] as const,
    buckets: MS_BUCKETS,
    registers: [this.registry],
  });
  private readonly frameToEvent = new Histogram({
    name: 'arpgnet_frame_to_event_ms',
    help: 'From a frame leaving the decoder to its emotion event being published, in milliseconds',
    buckets: MS_BUCKETS,
    registers: [this.registry],
  });
  private readonly frames = new Counter({
    name: 'arpgnet_frames_total',
    help: 'Frames by what happened to them: decoded, analysed, dropped (by a live source that fell behind)',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  private readonly events = new Counter({
    name: 'arpgnet_events_published_total',
    help: 'Events published, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'arpgnet_' });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  observe(stage: Stage, ms: number): void {
    this.stage.observe({ stage }, ms);
  }

  frame(state: 'decoded' | 'analysed' | 'dropped', n = 1): void {
    if (n > 0) this.frames.inc({ state }, n);
  }

  event(e: PipelineEvent): void {
    this.events.inc({ type: e.type });
    if (e.type === 'emotion') this.frameToEvent.observe(e.latencyMs);
  }

  /** Gauges and counters read from their owners when Prometheus scrapes. */
  watch(o: { hub: EventHub; live: LiveAnalysis; pool: WorkerPool; auth: Authenticator; limits: Limits }): void {
    const r = [this.registry];
    new Gauge({
      name: 'arpgnet_streams_active',
      help: 'Streams being analysed',
      registers: r,
      collect: function () {
        this.set(o.live.active);
      },
    });
    new Gauge({
      name: 'arpgnet_faces_active',
      help: 'Face tracks in analysed streams',
      registers: r,
      collect: function () {
        this.set(o.live.faces());
      },
    });
    new Gauge({
      name: 'arpgnet_subscribers',
      help: 'Clients connected to /events',
      registers: r,
      collect: function () {
        this.set(o.hub.size);
      },
    });
    // running totals kept by their owners, exposed as counters: one number, or one per label value
    const total = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers: r,
        collect: function () {
          this.reset();
          this.inc(read());
        },
      });
    };
    const totals = (name: string, help: string, label: string, read: () => Record<string, number>): void => {
      new Counter({
        name,
        help,
        labelNames: [label],
        registers: r,
        collect: function () {
          this.reset();
          for (const [value, n] of Object.entries(read())) this.inc({ [label]: value }, n);
        },
      });
    };
    totals(
      'arpgnet_events_dropped_total',
      'Events a subscriber did not get, by reason (slow_client: its queue overflowed; expired_from_ring: gone before it resumed)',
      'reason',
      () => o.hub.counts.dropped,
    );
    total('arpgnet_decoder_restarts_total', 'Decoder restarts of analysed streams', () => o.live.restarts());
    total('arpgnet_worker_deaths_total', 'mediasoup worker processes that died', () => o.pool.deaths);
    total('arpgnet_analysis_refused_total', 'Producers not analysed because serve.maxStreams was reached', () => o.live.counters.refused);
    totals(
      'arpgnet_limit_refusals_total',
      'Requests or connections refused by a configured limit (limits.*), by limit',
      'limit',
      () => o.limits.refusals,
    );
    totals(
      'arpgnet_auth_refusals_total',
      'Connections or requests refused for their token or origin, by reason',
      'reason',
      () => o.auth.refusals,
    );
    new Gauge({
      name: 'arpgnet_connections',
      help: 'WebSocket connections open on /signaling and /events',
      registers: r,
      collect: function () {
        this.set(o.limits.connections);
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
