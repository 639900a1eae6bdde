import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Stage } from '../pipeline/stream-state.js';
import type { PipelineEvent } from '../publish/events.js';

/** Stages timed per analysed frame (decode happens inside ffmpeg: its frames are counted, not timed). */
export type { Stage } from '../pipeline/stream-state.js';

const MS_BUCKETS = [1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 250, 500, 1000, 2500];

/**
 * /metrics in Prometheus text format: stage latencies, frame and event counts, process
 * metrics, and the gauges and totals each role registers for what it owns.
 */
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

  /** A gauge read from its owner when Prometheus scrapes. */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect: function () {
        this.set(read());
      },
    });
  }

  /** Gauges by one label's values, read from their owner when Prometheus scrapes. */
  gauges(name: string, help: string, label: string, read: () => Readonly<Record<string, number>>): void {
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect: function () {
        for (const [k, v] of Object.entries(read())) this.set({ [label]: k }, v);
      },
    });
  }

  /** Gauges by two labels, read (asynchronously: from other threads, say) when Prometheus scrapes. */
  gaugesLater(
    name: string,
    help: string,
    labels: readonly [string, string],
    read: () => Promise<Array<{ of: readonly [string, string]; value: number }>>,
  ): void {
    new Gauge({
      name,
      help,
      labelNames: labels,
      registers: [this.registry],
      collect: async function () {
        this.reset();
        for (const r of await read()) this.set({ [labels[0]]: r.of[0], [labels[1]]: r.of[1] }, r.value);
      },
    });
  }

  /** A running total kept by its owner, exposed as a counter. */
  total(name: string, help: string, read: () => number): void {
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect: function () {
        this.reset();
        this.inc(read());
      },
    });
  }

  /** Running totals by one label's values, kept by their owner. */
  totals(name: string, help: string, label: string, read: () => Readonly<Record<string, number>>): void {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect: function () {
        this.reset();
        for (const [value, n] of Object.entries(read())) this.inc({ [label]: value }, n);
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
