/**
 * Measures the alignment template from the training crops themselves: MediaPipe
 * landmarks every CK+48 and a sample of FER2013 faces, and the median position of
 * each of the five points (in crop pixels) becomes the template. Live faces warped
 * onto it are then framed the way the training crops are.
 *
 *   npx tsx training/contract/measure-template.ts [--shared DIR] [--per-class N]
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MediaPipeFaces } from '../../src/pipeline/faces/mediapipe.js';
import { sharedDir } from '../../src/paths.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const shared = sharedDir(opt('--shared', ''));
const perClass = Number(opt('--per-class', '40'));
const CROP = 48;
const SCALE = 4;
const PAD = 48; // crop pixels of grey border so the detector sees a whole head
const SIDE = (CROP + 2 * PAD) * SCALE;

function decode(files: string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const f of files) {
    const r = spawnSync('ffmpeg', ['-v', 'error', '-i', f, '-vf',
      `scale=${CROP * SCALE}:${CROP * SCALE}:flags=bilinear,pad=${SIDE}:${SIDE}:${PAD * SCALE}:${PAD * SCALE}:color=gray`,
      '-f', 'rawvideo', '-pix_fmt', 'rgba', 'pipe:1'], { maxBuffer: SIDE * SIDE * 8 });
    if (r.status === 0 && r.stdout.length === SIDE * SIDE * 4) out.push(new Uint8Array(r.stdout));
  }
  return out;
}

const lm = await MediaPipeFaces.create({
  modelPath: join(shared, 'models/mediapipe/face_landmarker.task'), maxFaces: 1, mode: 'IMAGE',
});
const pts: number[][][] = [[], [], [], [], []];
let tried = 0;
for (const set of ['ckplus48', 'fer2013/train']) {
  const root = join(shared, 'data', set);
  for (const cls of readdirSync(root).sort()) {
    const files = readdirSync(join(root, cls)).sort().slice(0, perClass).map((f) => join(root, cls, f));
    for (const img of decode(files)) {
      tried++;
      const face = lm.detect({ data: img, width: SIDE, height: SIDE }, 0)[0];
      if (!face) continue;
      // landmarks come with pixel centres at integers; map them back through the upscale and pad
      const back = (v: number): number => (v + 0.5) / SCALE - 0.5 - PAD;
      face.points.forEach(([x, y], k) => pts[k]!.push([back(x), back(y)]));
    }
  }
}
lm.close();
const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const template = pts.map((p) => [median(p.map((q) => q[0]!)), median(p.map((q) => q[1]!))].map((v) => Math.round(v * 100) / 100));
console.log(JSON.stringify({ faces: pts[0]!.length, tried, template }));
