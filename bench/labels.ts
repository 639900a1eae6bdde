/**
 * How steady and how right the shown label is; prints JSON.
 *
 *   npm run bench:labels -- [--old DIR] [--models DIR] [--config FILE] [--with FILE] [--detectors yunet,mediapipe] [--only clips] [--out FILE]
 *
 * For each model/settings pair, in one run: over the shared talking-head clips (played
 * as files, analysed at the overlay's rate), label flips per minute per face and the
 * share of emotion events per label (contempt above all); over the dev CK+ sequences at
 * 30 and 10 fps, accuracy of the label at the end and the media time until the shown
 * label is the right one. `--old DIR` holds the earlier model pair
 * (arpgnet-edge.{encoder,head}.onnx), measured with the settings it shipped with and with
 * today's; `--models DIR` measures another pair instead of the shipped one, `--config`
 * other analysis settings (as `serve --config` would take them), `--with FILE` that file's
 * analysis settings and facial-actions model beside these, in the same run, `--detectors` the shipped
 * pair once per face detector.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { loadConfig, type Config } from '../src/config.js';
import { evaluate } from '../src/eval/evaluate.js';
import { openSource } from '../src/ingest/source.js';
import { silentLogger } from '../src/log.js';
import { EmotionPipeline } from '../src/pipeline/emotion-pipeline.js';
import { shownLabels } from '../src/pipeline/labeller.js';
import type { EmotionEvent, PipelineEvent } from '../src/publish/events.js';
import { sharedDir } from '../src/paths.js';
import { commit } from './lib/measure.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = (s.length - 1) / 2;
  return s.length ? (s[Math.floor(m)]! + s[Math.ceil(m)]!) / 2 : NaN;
};
const r2 = (v: number): number => Math.round(v * 100) / 100;

interface Setup {
  name: string;
  cfg: Config;
}

/** 1.1.0's label rule: moving average, plain argmax over every label, no threshold, no hold. */
function asShipped110(cfg: Config): Config {
  return {
    ...cfg,
    analysis: { ...cfg.analysis, stride: 2, minFrames: 3, smoothing: 0.6, minConfidence: 0, hold: 1, margin: 0, hiddenLabels: [] },
  };
}

async function clips(cfg: Config): Promise<Record<string, unknown>> {
  const dir = join(sharedDir(), 'data', 'videos');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.mp4'))
    .sort();
  const pipeline = await EmotionPipeline.create(cfg, silentLogger);
  const perClip: Record<string, unknown>[] = [];
  const counts: Record<string, number> = {};
  let total = 0;
  try {
    for (const f of files) {
      const source = await openSource(join(dir, f), { maxSide: cfg.analysis.maxSide, sequenceFps: 30, realtime: false }, f);
      const durationMin = (source.info.durationMs ?? 0) / 60000;
      const run = await pipeline.analyse(source, {});
      const events: PipelineEvent[] = await lastValueFrom(run.events$.pipe(toArray()));
      const emotions = events.filter((e): e is EmotionEvent => e.type === 'emotion');
      let flips = 0;
      const last = new Map<string, string>();
      for (const e of emotions) {
        const prev = last.get(e.track);
        if (prev !== undefined && prev !== e.label) flips++;
        last.set(e.track, e.label);
        counts[e.label] = (counts[e.label] ?? 0) + 1;
        total++;
      }
      perClip.push({
        clip: f,
        minutes: Math.round(durationMin * 1000) / 1000,
        events: emotions.length,
        flipsPerMinute: r2(flips / durationMin),
      });
    }
  } finally {
    await pipeline.close();
  }
  const share = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, r2((100 * v) / total)]));
  return {
    medianFlipsPerMinute: median(perClip.map((c) => c.flipsPerMinute as number)),
    contemptPercent: share['contempt'] ?? 0,
    uncertainPercent: share['uncertain'] ?? 0,
    labelPercent: share,
    events: total,
    clips: perClip,
  };
}

async function sequences(cfg: Config, fps: number): Promise<Record<string, unknown>> {
  const pipeline = await EmotionPipeline.create(cfg, silentLogger);
  try {
    const r = await evaluate(
      pipeline,
      {
        data: join(sharedDir(), 'data', 'ckplus-seq-dev'),
        format: 'sequences',
        aligned: false,
        fps,
        playFps: 30,
        batch: 32,
        shown: shownLabels(pipeline.model.labels, cfg.analysis.hiddenLabels),
        mediapipeDir: cfg.models.mediapipeDir,
      },
      Math.min(cfg.analysis.minFrames, pipeline.model.window),
      silentLogger,
    );
    return {
      fps,
      accuracy: r.accuracy,
      n: r.n,
      ece: r2(r.ece * 100) / 100,
      medianTimeToLabelMs: r.timeToLabelMs?.median,
      reached: r.timeToLabelMs?.reached,
    };
  } finally {
    await pipeline.close();
  }
}

const cfgFile = arg('--config');
const base = loadConfig(cfgFile, {}, {});
base.runtime = { ...base.runtime, providers: ['cpu'] };
const models = arg('--models');
if (models)
  base.models = { ...base.models, encoder: join(models, 'arpgnet-edge.encoder.onnx'), head: join(models, 'arpgnet-edge.head.onnx') };
const detectors = arg('--detectors')?.split(',') as Array<Config['analysis']['detector']> | undefined;
const setups: Setup[] = detectors
  ? detectors.map((d) => ({ name: `shipped, detector ${d}`, cfg: { ...base, analysis: { ...base.analysis, detector: d } } }))
  : [{ name: 'shipped, default settings', cfg: base }];
// --with FILE: those settings measured beside the defaults, in the same run
const withFile = arg('--with');
if (withFile) {
  const other = loadConfig(withFile, {}, {});
  setups.push({
    name: `shipped, ${withFile}`,
    cfg: { ...base, analysis: other.analysis, models: { ...base.models, actions: other.models.actions } },
  });
}
const old = arg('--old');
if (old) {
  const files = { ...base.models, encoder: join(old, 'arpgnet-edge.encoder.onnx'), head: join(old, 'arpgnet-edge.head.onnx') };
  setups.unshift({ name: `${old}, 1.1.0 settings`, cfg: asShipped110({ ...base, models: files }) });
  setups.push({ name: `${old}, default settings`, cfg: { ...base, models: files } });
}
const results: Record<string, unknown>[] = [];
for (const s of setups) {
  const pipeline = await EmotionPipeline.create(s.cfg, silentLogger);
  const version = pipeline.model.version;
  await pipeline.close();
  results.push({
    setup: s.name,
    model: version,
    analysis: s.cfg.analysis,
    clips: await clips(s.cfg),
    devSequences: arg('--only') === 'clips' ? [] : [await sequences(s.cfg, 30), await sequences(s.cfg, 10)],
  });
}
const out = { command: `npm run bench:labels -- ${process.argv.slice(2).join(' ')}`.trim(), commit: commit(), seed: null, results };
const text = JSON.stringify(out, null, 1);
const file = arg('--out');
if (file) writeFileSync(file, `${text}\n`);
process.stdout.write(`${text}\n`);
