import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import type { Logger } from '../log.js';
import { readOnnxMetadata } from './onnx-metadata.js';
import { openSession, type SessionOptions } from './session.js';

/**
 * The facial-actions branch: MediaPipe's blendshapes -> a log-term per FER2013 class that
 * is added to the window head's log-probabilities (late fusion; training/experiments/actions.py).
 * It only redistributes the share of the classes it was trained on: a label outside them
 * (contempt) keeps its probability, so the fusion cannot promote or bury it.
 */
export class ActionsModel {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** Blendshape names in the order the graph reads them. */
    readonly names: readonly string[],
    /** The classes its terms are for, a subset of the head's labels. */
    readonly classes: readonly string[],
    readonly version: string,
    readonly path: string,
  ) {}

  static async load(path: string, opts: SessionOptions, log: Logger): Promise<ActionsModel> {
    const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
      throw new Error(`actions model not readable at ${path}: ${e.code ?? e.message}`);
    });
    let meta: Record<string, string>;
    try {
      meta = readOnnxMetadata(bytes);
    } catch (e) {
      throw new Error(`${path} is not an ONNX file (${(e as Error).message})`, { cause: e });
    }
    const names = meta['arpgnet.actions']?.split(',').filter(Boolean) ?? [];
    const classes = meta['arpgnet.classes']?.split(',').filter(Boolean) ?? [];
    if (!names.length || !classes.length) throw new Error(`${path}: no arpgnet.actions / arpgnet.classes metadata; not an actions model`);
    const { session } = await openSession(bytes, 'actions', { ...opts, providers: ['cpu'], intraOpThreads: 1 }, log);
    return new ActionsModel(session, names, classes, meta['arpgnet.version'] ?? 'unknown', path);
  }

  /**
   * One face's blendshapes in the graph's order, or why they cannot be used (a name
   * missing, a value outside 0..1): the caller skips that window and counts it.
   */
  vector(actions: Readonly<Record<string, number>>, into: Float32Array, at: number): string | null {
    for (const [k, name] of this.names.entries()) {
      const v = actions[name];
      if (v === undefined) return `blendshape '${name}' missing`;
      if (!(v >= 0 && v <= 1)) return `blendshape '${name}' is ${v}, outside 0..1`;
      into[at + k] = v;
    }
    return null;
  }

  /** [n x classes] log-terms for n faces' vectors ([n x names]). */
  async terms(vectors: Float32Array, n: number): Promise<Float32Array> {
    const d = this.names.length;
    const out = await this.session.run({ actions: new ort.Tensor('float32', vectors.subarray(0, n * d), [n, d]) });
    return out['terms']!.data as Float32Array;
  }

  /** Index in the head's labels of each class the terms are for; refuses a head without them. */
  indexIn(labels: readonly string[]): number[] {
    return this.classes.map((c) => {
      const i = labels.indexOf(c);
      if (i < 0) throw new Error(`${this.path}: class '${c}' is not one of the head's labels (${labels.join(', ')})`);
      return i;
    });
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * p (one row over the head's labels) with the terms added to the log-probabilities of
 * the classes at `idx`, renormalised to the share those classes had: the other labels
 * keep theirs. In place.
 */
export function fuseRow(p: Float32Array, idx: readonly number[], terms: Float32Array): void {
  let share = 0;
  let max = -Infinity;
  for (const [k, i] of idx.entries()) {
    share += p[i]!;
    max = Math.max(max, Math.log(Math.max(p[i]!, 1e-12)) + terms[k]!);
  }
  if (share <= 0) return;
  let sum = 0;
  const z = idx.map((i, k) => {
    const e = Math.exp(Math.log(Math.max(p[i]!, 1e-12)) + terms[k]! - max);
    sum += e;
    return e;
  });
  for (const [k, i] of idx.entries()) p[i] = (z[k]! / sum) * share;
}
