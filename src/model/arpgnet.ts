import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import type { Logger } from '../log.js';
import { readOnnxMetadata } from './onnx-metadata.js';
import { parseMetadata, type ModelMetadata, type Preprocess } from './metadata.js';
import { openSession, type Provider, type SessionOptions } from './session.js';

export interface ModelFiles {
  encoder: string;
  head: string;
}

export interface Embeddings {
  /** [n * appDim] */
  app: Float32Array;
  /** [n * relDim] */
  rel: Float32Array;
}

/**
 * Each face's embeddings averaged with its mirror image's, which follows it in the batch
 * ([2n * d] -> [n * d]): what an encoder with its own mirror pass gives (flipAverage).
 */
export function mirrorMeans(e: Embeddings, n: number): Embeddings {
  const half = (v: Float32Array): Float32Array => {
    const d = v.length / (2 * n);
    const out = new Float32Array(n * d);
    for (let f = 0; f < n; f++) for (let k = 0; k < d; k++) out[f * d + k] = (v[2 * f * d + k]! + v[(2 * f + 1) * d + k]!) / 2;
    return out;
  };
  return { app: half(e.app), rel: half(e.rel) };
}

async function readModel(path: string, what: string): Promise<{ bytes: Uint8Array; meta: ModelMetadata }> {
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${what} model not readable at ${path}: ${e.code ?? e.message}`);
  });
  let raw: Record<string, string>;
  try {
    raw = readOnnxMetadata(bytes);
  } catch (e) {
    throw new Error(`${path} is not an ONNX file (${(e as Error).message})`, { cause: e });
  }
  return { bytes, meta: parseMetadata(raw, path) };
}

function dims(s: ort.InferenceSession, input: string): readonly (number | string)[] {
  const m = s.inputMetadata.find((x) => x.name === input);
  if (!m || !m.isTensor) throw new Error(`model has no tensor input named ${input}`);
  return m.shape;
}

/** Refuses an encoder/head pair that would not fit together or with the preprocessing it declares. */
function checkPair(enc: ModelMetadata, head: ModelMetadata, files: ModelFiles): void {
  const problems: string[] = [];
  if (enc['arpgnet.kind'] !== 'encoder') problems.push(`${files.encoder} is a ${enc['arpgnet.kind']}, not an encoder`);
  if (head['arpgnet.kind'] !== 'head') problems.push(`${files.head} is a ${head['arpgnet.kind']}, not a window head`);
  for (const k of ['arpgnet.pair', 'arpgnet.preset', 'arpgnet.window', 'arpgnet.app_dim', 'arpgnet.rel_dim'] as const) {
    if (enc[k] !== head[k]) problems.push(`${k}: encoder has ${String(enc[k])}, head has ${String(head[k])}`);
  }
  if (JSON.stringify(enc['arpgnet.labels']) !== JSON.stringify(head['arpgnet.labels'])) problems.push('labels differ');
  if (problems.length) throw new Error(`model files do not belong together: ${problems.join('; ')}`);
}

/** ARPGNet split for streaming: the encoder runs once per face per frame, the head once per window. */
export class Arpgnet {
  readonly labels: readonly string[];
  readonly window: number;
  readonly preprocess: Preprocess;
  readonly name: string;
  readonly version: string;
  readonly appDim: number;
  readonly relDim: number;
  readonly channels: number;
  /** The encoder graph encodes each face with its mirror image and averages the two itself. */
  readonly flipAverage: boolean;
  /** How the encoder was quantised, or null for a float encoder. */
  readonly quantization: string | null;
  readonly provider: Provider;

  private constructor(
    private readonly encoder: ort.InferenceSession,
    private readonly head: ort.InferenceSession,
    meta: ModelMetadata,
    provider: Provider,
  ) {
    this.labels = meta['arpgnet.labels'];
    this.window = meta['arpgnet.window'];
    this.preprocess = meta['arpgnet.preprocess'];
    this.name = meta['arpgnet.name'];
    this.version = meta['arpgnet.version'];
    this.appDim = meta['arpgnet.app_dim'];
    this.relDim = meta['arpgnet.rel_dim'];
    this.channels = this.preprocess.colour === 'grey' ? 1 : 3;
    this.flipAverage = meta['arpgnet.flip_average'] === 'true';
    this.quantization = meta['arpgnet.quantization'] ?? null;
    this.provider = provider;
  }

  static async load(files: ModelFiles, opts: SessionOptions, log: Logger): Promise<Arpgnet> {
    const [enc, head] = await Promise.all([readModel(files.encoder, 'encoder'), readModel(files.head, 'head')]);
    checkPair(enc.meta, head.meta, files);
    const e = await openSession(enc.bytes, 'encoder', opts, log);
    const h = await openSession(head.bytes, 'head', opts, log);
    const model = new Arpgnet(e.session, h.session, enc.meta, e.provider);
    const { width, height } = model.preprocess.inputSize;
    const want = [model.channels, height, width];
    const got = dims(e.session, 'face').slice(1);
    if (got.join() !== want.join()) {
      throw new Error(`${files.encoder}: input is [n,${got.join(',')}] but its preprocessing metadata implies [n,${want.join(',')}]`);
    }
    const t = dims(h.session, 'valid')[1];
    if (t !== model.window) throw new Error(`${files.head}: head takes T=${String(t)} but metadata says ${model.window}`);
    return model;
  }

  /** faces: n aligned faces, [n, C, H, W] float32 as the preprocessing contract prescribes. */
  async encode(faces: Float32Array, n: number): Promise<Embeddings> {
    const { width, height } = this.preprocess.inputSize;
    const face = new ort.Tensor('float32', faces.subarray(0, n * this.channels * width * height), [n, this.channels, height, width]);
    const out = await this.encoder.run({ face });
    return { app: out['appearance']!.data as Float32Array, rel: out['relation']!.data as Float32Array };
  }

  /** app [n, T, Da], rel [n, T, Dr], valid [n, T] -> class probabilities [n, classes]. */
  async classify(app: Float32Array, rel: Float32Array, valid: Float32Array, n: number): Promise<Float32Array> {
    return softmaxRows(await this.logits(app, rel, valid, n), this.labels.length);
  }

  /** Raw logits; inputs may be larger preallocated buffers, only the first n windows are read. */
  async logits(app: Float32Array, rel: Float32Array, valid: Float32Array, n: number): Promise<Float32Array> {
    const t = this.window;
    const out = await this.head.run({
      appearance: new ort.Tensor('float32', app.subarray(0, n * t * this.appDim), [n, t, this.appDim]),
      relation: new ort.Tensor('float32', rel.subarray(0, n * t * this.relDim), [n, t, this.relDim]),
      valid: new ort.Tensor('float32', valid.subarray(0, n * t), [n, t]),
    });
    return out['logits']!.data as Float32Array;
  }

  /** One run of each graph so the first real frame does not pay for lazy initialisation. */
  async warmup(): Promise<void> {
    const { width, height } = this.preprocess.inputSize;
    const e = await this.encode(new Float32Array(this.channels * width * height), 1);
    const t = this.window;
    const tile = (v: Float32Array): Float32Array => {
      const out = new Float32Array(v.length * t);
      for (let i = 0; i < t; i++) out.set(v, i * v.length);
      return out;
    };
    await this.classify(tile(e.app), tile(e.rel), new Float32Array(t).fill(1), 1);
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.head.release()]);
  }
}

export function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / classes; r++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      const e = Math.exp(logits[r * classes + c]! - max);
      out[r * classes + c] = e;
      sum += e;
    }
    for (let c = 0; c < classes; c++) out[r * classes + c] = out[r * classes + c]! / sum;
  }
  return out;
}
