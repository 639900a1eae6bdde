import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';
import { join, resolve } from 'node:path';
import { sessionOptions, type Config } from '../config.js';
import type { Logger } from '../log.js';
import { Arpgnet } from '../model/arpgnet.js';
import { ROOT } from '../paths.js';

/** The official MediaPipe face landmarker bundle (float16, version 1). */
export const FACE_LANDMARKER = {
  url: 'https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task',
  /** Published size of that file; its sha256 could not be pinned from an offline build (pass --sha256 to enforce one). */
  bytes: 3758596,
  file: 'mediapipe/face_landmarker.task',
};

/**
 * YuNet (libfacedetection.train, Apache-2.0), the export with a dynamic input size that
 * finds the faces by default. Pinned to a commit; checked by opening it (input and
 * outputs as the detector reads them), since no digest could be pinned offline.
 */
export const YUNET = {
  url: 'https://raw.githubusercontent.com/ShiqiYu/libfacedetection.train/2b5e61dee21441ef4676505f835ab63ee53bae1e/onnx/yunet_s_dynamic.onnx',
  file: 'yunet/yunet_s_dynamic.onnx',
};

async function download(url: string, what: string, root: string, fetchImpl: typeof fetch): Promise<Buffer> {
  try {
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(30_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new Error(
      `cannot download ${url} (${cause}). Offline? Copy ${what} into ${root} by hand, or set ARPGNET_MODELS_DIR to a folder that has it.`,
      {
        cause: e,
      },
    );
  }
}

/** A YuNet export the detector can read: one input of any size, the 12 per-stride outputs. */
async function checkYunet(body: Buffer): Promise<void> {
  const session = await ort.InferenceSession.create(body).catch((e: Error) => {
    throw new Error(`downloaded ${YUNET.file} is not an ONNX model onnxruntime opens (${e.message}); not saved`);
  });
  const want = ['cls', 'obj', 'bbox', 'kps'].flatMap((k) => [8, 16, 32].map((s) => `${k}_${s}`));
  const missing = want.filter((n) => !session.outputNames.includes(n));
  await session.release();
  if (session.inputNames.length !== 1 || missing.length)
    throw new Error(
      `downloaded ${YUNET.file} is not the YuNet export the detector reads (outputs missing: ${missing.join(', ') || 'none'}); not saved`,
    );
}

/** Downloads what the models folder lacks: MediaPipe's landmarker and YuNet. */
export async function modelsPull(
  dir: string | undefined,
  sha256: string | undefined,
  log: Logger,
  fetchImpl: typeof fetch = fetch,
): Promise<number> {
  const root = resolve(dir ?? process.env['ARPGNET_MODELS_DIR'] ?? join(ROOT, '.cache', 'models'));
  if (!existsSync(join(root, FACE_LANDMARKER.file))) {
    const body = await download(FACE_LANDMARKER.url, 'face_landmarker.task', join(root, 'mediapipe'), fetchImpl);
    const digest = createHash('sha256').update(body).digest('hex');
    if (sha256 && digest !== sha256.toLowerCase())
      throw new Error(`downloaded face_landmarker.task has sha256 ${digest}, expected ${sha256}; not saved`);
    // a .task bundle is a zip archive
    if (!sha256 && (body.length !== FACE_LANDMARKER.bytes || body.readUInt32LE(0) !== 0x04034b50)) {
      throw new Error(
        `downloaded face_landmarker.task is ${body.length} bytes (expected a ${FACE_LANDMARKER.bytes}-byte .task bundle); not saved`,
      );
    }
    await mkdir(join(root, 'mediapipe'), { recursive: true });
    await writeFile(join(root, FACE_LANDMARKER.file), body);
    log.info({ file: join(root, FACE_LANDMARKER.file), bytes: body.length, sha256: digest }, 'face landmarker saved');
  }
  if (!existsSync(join(root, YUNET.file))) {
    const body = await download(YUNET.url, 'yunet_s_dynamic.onnx', join(root, 'yunet'), fetchImpl);
    await checkYunet(body);
    await mkdir(join(root, 'yunet'), { recursive: true });
    await writeFile(join(root, YUNET.file), body);
    log.info(
      { file: join(root, YUNET.file), bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') },
      'face detector saved',
    );
  }
  return 0;
}

export async function modelsInfo(cfg: Config, log: Logger): Promise<number> {
  const m = await Arpgnet.load(cfg.models, sessionOptions(cfg), log);
  process.stdout.write(
    `${JSON.stringify({ name: m.name, version: m.version, quantization: m.quantization, provider: m.provider, labels: m.labels, window: m.window, preprocess: m.preprocess }, null, 2)}\n`,
  );
  await m.release();
  return 0;
}

/**
 * Opens the model with the configured providers and runs it twice. With TensorRT and an
 * engine cache the first open builds the engines (minutes on a Jetson); run this once
 * at install so the service starts fast. Prints the timings as JSON.
 */
export async function modelsWarmup(cfg: Config, log: Logger): Promise<number> {
  const t0 = performance.now();
  const m = await Arpgnet.load(cfg.models, sessionOptions(cfg), log);
  const opened = performance.now();
  await m.warmup();
  const first = performance.now();
  await m.warmup();
  const second = performance.now();
  const result = {
    provider: m.provider,
    engineCachePath: cfg.runtime.tensorrt.engineCachePath ?? null,
    openMs: Math.round(opened - t0),
    firstRunMs: Math.round(first - opened),
    secondRunMs: Math.round(second - first),
  };
  log.info(result, 'model warm-up (first-run delay)');
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await m.release();
  return 0;
}
