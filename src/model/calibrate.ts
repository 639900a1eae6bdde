import * as ort from 'onnxruntime-node';
import { exposeAllOutputs } from './onnx-outputs.js';

/**
 * INT8 calibration for TensorRT: the largest absolute value every tensor of the
 * encoder takes over a set of real aligned faces, written as a TensorRT calibration
 * cache (the "native" table ONNX Runtime's TensorRT provider reads with
 * trt_int8_use_native_calibration_table). Max-abs ranges are what TensorRT's own
 * calibrators reduce to; faces from the deployment camera give the tightest ones.
 */
export class RangeCollector {
  readonly ranges = new Map<string, number>();
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
    const input = new ort.Tensor('float32', batch, dims);
    this.note(this.inputName, batch);
    const out = await this.session.run({ [this.inputName]: input });
    for (const [name, t] of Object.entries(out)) if (t.type === 'float32') this.note(name, t.data as Float32Array);
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
