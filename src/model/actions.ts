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

/** The branch as the pipeline holds it: the model and where its classes sit in the head's labels. */
export interface ActionsBranch {
  model: ActionsModel;
  idx: readonly number[];
}

/** What one batch of readings did with the branch. */
export interface Fused {
  fused: number;
  /** Readings whose face came without blendshapes: the head's reading stands. */
  without: number;
  /** Slots whose blendshapes could not be used, and why (their head's reading stands). */
  unusable: Array<{ slot: number; why: string }>;
}

/**
 * The branch on a batch of readings (`probs`, one row of c labels per slot), in place:
 * the slots that came with usable blendshapes get their terms, the others are left as
 * the head gave them and counted. `scratch` spares the caller's hot path an allocation.
 */
export async function fuseReadings(
  f: ActionsBranch,
  actions: ReadonlyArray<Readonly<Record<string, number>> | null | undefined>,
  probs: Float32Array,
  c: number,
  scratch?: Float32Array,
): Promise<Fused> {
  const d = f.model.names.length;
  const vectors = scratch && scratch.length >= actions.length * d ? scratch : new Float32Array(actions.length * d);
  const out: Fused = { fused: 0, without: 0, unusable: [] };
  const rows: number[] = [];
  actions.forEach((a, slot) => {
    if (!a) return void out.without++;
    const why = f.model.vector(a, vectors, rows.length * d);
    if (why) out.unusable.push({ slot, why });
    else rows.push(slot);
  });
  if (!rows.length) return out;
  const terms = await f.model.terms(vectors, rows.length);
  const k = f.idx.length;
  rows.forEach((slot, r) => fuseRow(probs.subarray(slot * c, (slot + 1) * c), f.idx, terms.subarray(r * k, (r + 1) * k)));
  out.fused = rows.length;
  return out;
}

/**
 * p (one row over the head's labels) with the terms added to the log-probabilities of
 * the classes at `idx`, renormalised to the share those classes had: the other labels
 * keep theirs. In place.
 */
export function fuseRow(p: Float32Array, idx: readonly number[], terms: Float32Array): void {
  let share = 0;
  const z = idx.map((i, k) => {
    share += p[i]!;
    return Math.log(Math.max(p[i]!, 1e-12)) + terms[k]!;
  });
  if (share <= 0) return;
  const max = Math.max(...z);
  let sum = 0;
  for (let k = 0; k < z.length; k++) sum += z[k] = Math.exp(z[k]! - max);
  for (const [k, i] of idx.entries()) p[i] = (z[k]! / sum) * share;
}
