/**
 * Model cost in onnxruntime-node on this CPU; prints JSON.
 *
 *   npm run bench:model [-- [--providers tensorrt,cuda,cpu] [--widths 40,80,160,320]]
 *
 * Encoder ms per face at 1 and 2 threads and head ms per window, for the shipped edge
 * model and for the paper preset (IResNet-50 at 112x112, exported untrained by the
 * training code into .cache/bench: its cost does not depend on its weights). --widths adds
 * an untrained edge encoder of those backbone widths, mirror averaged like the shipped one:
 * the cost of a wider encoder before spending hours training it. --faceres 64,112 adds the
 * face-pretrained teacher (faceres-deep, training/experiments/faceres.py) at those input
 * sides on the same 48x48 grey crops: the cost of shipping it as the appearance backbone.
 * "actions" is the facial-actions branch (models/arpgnet-edge.actions.onnx) per face, where
 * blendshapes are computed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../src/log.js';
import { ActionsModel } from '../src/model/actions.js';
import { Arpgnet, type ModelFiles } from '../src/model/arpgnet.js';
import ort from 'onnxruntime-node';
import { ROOT } from '../src/paths.js';
import { commit } from './lib/measure.js';

const cache = join(ROOT, '.cache', 'bench');
const i = process.argv.indexOf('--providers');
const providers = (i >= 0 ? process.argv[i + 1]! : 'cpu').split(',') as Array<'tensorrt' | 'cuda' | 'cpu'>;
const w = process.argv.indexOf('--widths');
const widths = w >= 0 ? process.argv[w + 1]! : undefined;
const f = process.argv.indexOf('--faceres');
const faceresSizes = f >= 0 ? process.argv[f + 1]!.split(',').map(Number) : [];

function seededFiles(preset: string, stem: string, extra: string[] = []): ModelFiles {
  const files = { encoder: join(cache, `${stem}.encoder.onnx`), head: join(cache, `${stem}.head.onnx`) };
  if (!existsSync(files.head)) {
    execFileSync('/usr/bin/python3', ['-m', 'arpgnet.parity', 'preset', preset, '--out', cache, '--stem', stem, ...extra], {
      cwd: join(ROOT, 'training'),
      stdio: 'inherit',
    });
  }
  return files;
}

function wideEdge(widths: string): readonly [string, ModelFiles] {
  const stem = `edge-${widths.replaceAll(',', '-')}`;
  return [stem, seededFiles('edge', stem, ['--widths', widths, '--flip-average'])];
}

async function time(fn: () => Promise<unknown>, minMs: number): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const t = performance.now();
  let n = 0;
  while (performance.now() - t < minMs || n < 5) {
    await fn();
    n++;
  }
  return (performance.now() - t) / n;
}

async function measure(files: ModelFiles, threads: number): Promise<{ encoderMsPerFace: number; headMsPerWindow: number }> {
  const trt = { fp16: true, engineCachePath: join(cache, 'trt') };
  const m = await Arpgnet.load(files, { providers, intraOpThreads: threads, tensorrt: trt }, silentLogger);
  const { width, height } = m.preprocess.inputSize;
  const face = new Float32Array(m.channels * width * height).map((_, i) => Math.sin(i));
  const t = m.window;
  const app = new Float32Array(t * m.appDim).fill(0.1);
  const rel = new Float32Array(t * m.relDim).fill(0.1);
  const valid = new Float32Array(t).fill(1);
  const enc = await time(() => m.encode(face, 1), 1500);
  const head = await time(() => m.classify(app, rel, valid, 1), 1000);
  await m.release();
  return { encoderMsPerFace: Math.round(enc * 100) / 100, headMsPerWindow: Math.round(head * 100) / 100 };
}

const edge = { encoder: join(ROOT, 'models/arpgnet-edge.encoder.onnx'), head: join(ROOT, 'models/arpgnet-edge.head.onnx') };
const out: Record<string, unknown> = { providers };
for (const [name, files] of [
  ['edge', edge],
  ['paper', seededFiles('paper', 'paper')],
  ...(widths ? ([wideEdge(widths)] as const) : []),
] as const) {
  out[name] = { threads1: await measure(files, 1), threads2: await measure(files, 2) };
}
{
  const a = await ActionsModel.load(
    join(ROOT, 'models/arpgnet-edge.actions.onnx'),
    { providers: ['cpu'], intraOpThreads: 1 },
    silentLogger,
  );
  const v = new Float32Array(a.names.length).map((_, i) => (Math.sin(i) + 1) / 2);
  out['actions'] = { threads1: { msPerFace: Math.round((await time(() => a.terms(v, 1), 1000)) * 1000) / 1000 } };
  await a.release();
}
for (const size of faceresSizes) {
  const file = join(cache, `faceres-${size}.onnx`);
  if (!existsSync(file)) {
    execFileSync('/usr/bin/python3', ['-m', 'experiments.faceres_onnx', '--size', String(size), '--out', file], {
      cwd: join(ROOT, 'training'),
      stdio: 'inherit',
    });
  }
  out[`faceres${size}`] = { threads1: await faceresMs(file, 1), threads2: await faceresMs(file, 2) };
}

async function faceresMs(file: string, threads: number): Promise<{ msPerFace: number }> {
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, executionProviders: ['cpu'] });
  const face = new ort.Tensor(
    'float32',
    new Float32Array(48 * 48).map((_, i) => (Math.sin(i) + 1) / 2),
    [1, 1, 48, 48],
  );
  const ms = await time(() => s.run({ face }), 1500);
  await s.release();
  return { msPerFace: Math.round(ms * 100) / 100 };
}

process.stdout.write(
  `${JSON.stringify({ command: `npm run bench:model -- ${process.argv.slice(2).join(' ')}`.trim(), commit: commit(), seed: null, ...out }, null, 2)}\n`,
);
