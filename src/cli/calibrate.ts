import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { sessionOptions, type Config } from '../config.js';
import type { RgbaFrame } from '../ingest/frame.js';
import { decodeImage, IMAGE_EXT } from '../ingest/still-image.js';
import type { Logger } from '../log.js';
import { Arpgnet } from '../model/arpgnet.js';
import { RangeCollector, tensorrtCalibrationCache } from '../model/calibrate.js';
import { cropToInput, warpToTensor } from '../pipeline/align.js';

export interface CalibrateOptions {
  faces: string;
  out: string;
  /** The float encoder to measure (default: models.encoder). */
  encoder?: string | undefined;
  limit?: number | undefined;
  /** Also write each tensor's [low, high] at this percentile, for the QDQ quantiser. */
  ranges?: string | undefined;
  percentile: number;
}

const images = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
    .sort()
    .map((f) => join(dir, f));

/**
 * The calibration faces: a folder's images, or, for a folder of class folders (FER2013's
 * layout), their images taken in turn, so that any --limit still spans every expression.
 */
export function calibrationFiles(dir: string, limit?: number): string[] {
  let files = images(dir);
  if (!files.length) {
    const classes = readdirSync(dir)
      .filter((d) => statSync(join(dir, d)).isDirectory())
      .sort()
      .map((d) => images(join(dir, d)));
    const longest = Math.max(0, ...classes.map((c) => c.length));
    for (let i = 0; i < longest; i++) for (const c of classes) if (i < c.length) files.push(c[i]!);
  }
  if (!files.length) throw new Error(`${dir}: no images (${[...IMAGE_EXT].join(', ')}) in this folder or its class folders`);
  if (limit && files.length > limit) {
    // spread over the whole list: a folder is sorted, and its first files are often one subject
    const step = files.length / limit;
    files = Array.from({ length: limit }, (_, i) => files[Math.floor(i * step)]!);
  }
  return files;
}

/**
 * INT8 calibration of the float encoder from aligned face crops (square images framed like
 * the training crops), each also mirrored as the pipeline encodes it: a TensorRT table
 * (runtime.tensorrt.int8CalibrationTable) and, with --ranges, the percentile ranges
 * training/arpgnet/quantize.py builds the CPU's QDQ encoder from. Runs on the CPU.
 */
export async function modelsCalibrate(cfg: Config, o: CalibrateOptions, log: Logger): Promise<number> {
  const encoder = o.encoder ?? cfg.models.encoder;
  const files = { encoder, head: cfg.models.head };
  const m = await Arpgnet.load(files, { ...sessionOptions(cfg), providers: ['cpu'] }, log);
  await m.release();
  if (m.quantization)
    throw new Error(`${encoder} is already quantised (${m.quantization}); calibrate the float encoder it was made from (--encoder)`);
  const paths = calibrationFiles(o.faces, o.limit);
  const { width, height } = m.preprocess.inputSize;
  const per = m.channels * width * height;
  const bytes = new Uint8Array(await readFile(encoder));
  const collector = await RangeCollector.create(bytes);
  const batchFaces = 16;
  const batch = new Float32Array(2 * batchFaces * per);
  const pass = async (run: (b: Float32Array, dims: number[]) => Promise<void>): Promise<number> => {
    let n = 0;
    let k = 0;
    const flush = async (): Promise<void> => {
      if (k) await run(batch.subarray(0, k * per), [k, m.channels, height, width]);
      k = 0;
    };
    for (const p of paths) {
      let img: RgbaFrame;
      try {
        img = decodeImage(p);
      } catch (e) {
        log.warn({ face: p }, `${(e as Error).message}: skipped`);
        continue;
      }
      const sim = cropToInput(img.width, img.height, width, height);
      for (const mirror of [false, true]) warpToTensor(img, sim, m.preprocess, batch, k++ * per, mirror);
      n++;
      if (k === 2 * batchFaces) await flush();
    }
    await flush();
    return n;
  };
  const n = await pass((b, d) => collector.add(b, d));
  if (n === 0) throw new Error(`${o.faces}: none of its ${paths.length} images could be read`);
  await writeFile(o.out, tensorrtCalibrationCache(collector.ranges));
  const result: Record<string, unknown> = { faces: n, tensors: collector.ranges.size, table: resolve(o.out) };
  if (o.ranges) {
    await pass((b, d) => collector.histogram(b, d));
    const ranges = Object.fromEntries(collector.percentileRanges(o.percentile));
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const doc = { encoder: basename(encoder), sha256, faces: n, mirrored: true, percentile: o.percentile, ranges };
    await writeFile(o.ranges, `${JSON.stringify(doc, null, 1)}\n`);
    result['ranges'] = resolve(o.ranges);
  }
  log.info(result, 'INT8 calibration written');
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await collector.release();
  return 0;
}
