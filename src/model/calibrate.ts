import * as ort from 'onnxruntime-node';
import { exposeAllOutputs } from './onnx-outputs.js';

// bins per tensor over [-max, max]: 1/2048 of the range is far below one int8 step (1/255)
const BINS = 4096;

/**
 * INT8 calibration: the largest absolute value every tensor of the encoder takes over a
 * set of real aligned faces, written as a TensorRT calibration cache (the "native" table
 * ONNX Runtime's TensorRT provider reads with trt_int8_use_native_calibration_table).
 * Max-abs ranges are what TensorRT's own calibrators reduce to; faces from the deployment
 * camera give the tightest ones. A second pass over the same faces (`histogram`, then
 * `percentileRanges`) gives each tensor's asymmetric range without its rarest values, for
 * the CPU's QDQ encoder (training/arpgnet/quantize.py): on FER2013 val, ranges at the
 * 99.99th percentile cost 0.22 points against the float graph, min/max 0.36, the 99.9th
 * 0.50 (training/results/ts-1.3.1-int8-vs-float-fer2013-val.json).
 */
export class RangeCollector {
  readonly ranges = new Map<string, number>();
  private readonly hist = new Map<string, Float64Array>();
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputName: string,
    readonly tensors: string[],
  ) {}

  static async create(model: Uint8Array): Promise<RangeCollector> {
    const exposed = exposeAllOutputs(model);
    const session = await ort.InferenceSession.create(exposed.model, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled' });
    return new RangeCollector(session, exposed.inputs[0]!, exposed.tensors);
  }

  /** One batch of preprocessed faces [n, C, H, W]. */
  async add(batch: Float32Array, dims: readonly number[]): Promise<void> {
    for (const [name, data] of await this.tensorsOf(batch, dims)) this.note(name, data);
  }

  /** Second pass, after every `add`: the batch's values binned over each tensor's [-max, max]. */
  async histogram(batch: Float32Array, dims: readonly number[]): Promise<void> {
    for (const [name, data] of await this.tensorsOf(batch, dims)) {
      const m = this.ranges.get(name);
      if (m === undefined) throw new Error(`calibration: ${name} has no range from the first pass`);
      let h = this.hist.get(name);
      if (!h) this.hist.set(name, (h = new Float64Array(BINS)));
      const k = BINS / (2 * Math.max(m, 1e-12));
      for (let i = 0; i < data.length; i++) h[Math.min(BINS - 1, Math.max(0, Math.floor((data[i]! + m) * k)))]!++;
    }
  }

  /** Each histogrammed tensor's [low, high]: the values below the (100 - p)th and above the pth percentile left out. */
  percentileRanges(p: number): Map<string, [number, number]> {
    const out = new Map<string, [number, number]>();
    for (const [name, h] of this.hist) {
      const m = this.ranges.get(name)!;
      const total = h.reduce((a, b) => a + b, 0);
      const edge = (i: number): number => -m + (2 * m * i) / BINS;
      const tail = (total * (100 - p)) / 100;
      let lo = 0;
      for (let c = 0; lo < BINS - 1 && c + h[lo]! <= tail; lo++) c += h[lo]!;
      let hi = BINS - 1;
      for (let c = 0; hi > 0 && c + h[hi]! <= tail; hi--) c += h[hi]!;
      out.set(name, [edge(lo), edge(hi + 1)]);
    }
    return out;
  }

  private async tensorsOf(batch: Float32Array, dims: readonly number[]): Promise<Array<[string, Float32Array]>> {
    const out = await this.session.run({ [this.inputName]: new ort.Tensor('float32', batch, dims) });
    const all: Array<[string, Float32Array]> = [[this.inputName, batch]];
    for (const [name, t] of Object.entries(out)) if (t.type === 'float32') all.push([name, t.data as Float32Array]);
    return all;
  }

  private note(name: string, data: Float32Array): void {
    let m = this.ranges.get(name) ?? 0;
    for (let i = 0; i < data.length; i++) {
      const v = Math.abs(data[i]!);
      if (v > m) m = v;
    }
    this.ranges.set(name, m);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** TensorRT's calibration cache text: a version line, then `tensor: <scale as IEEE-754 hex>` with scale = range / 127. */
export function tensorrtCalibrationCache(ranges: Map<string, number>, header = 'TRT-8601-EntropyCalibration2'): string {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const lines = [header];
  for (const [name, range] of ranges) {
    f[0] = Math.max(range, 1e-8) / 127;
    lines.push(`${name}: ${u[0]!.toString(16).padStart(8, '0')}`);
  }
  return lines.join('\n') + '\n';
}
