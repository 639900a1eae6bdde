import { createWriteStream } from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import type { Config } from '../config.js';
import { evaluate } from '../eval/evaluate.js';
import { formatResult } from '../eval/metrics.js';
import type { Logger } from '../log.js';
import { EmotionPipeline } from '../pipeline/emotion-pipeline.js';
import { shownLabels } from '../pipeline/labeller.js';

export interface EvalFlags {
  data: string;
  format: string;
  aligned?: boolean | undefined;
  json?: boolean | undefined;
  limit?: number | undefined;
  samples?: string | undefined;
  actions?: boolean | undefined;
  /** Given: sequences are analysed at this rate; absent: every frame (30 fps). */
  fps?: number | undefined;
}

const PLAY_FPS = 30;

export async function evalCommand(cfg: Config, flags: EvalFlags, log: Logger): Promise<number> {
  if (flags.format !== 'images' && flags.format !== 'sequences')
    throw new Error(`--format must be 'images' or 'sequences', not '${flags.format}'`);
  if (flags.actions && flags.format !== 'images')
    throw new Error('--actions is for --format images (sequences carry them in their events)');
  // a sequence's label at its end is the last window's reading: smoothing over windows is
  // the overlay's business (bench:labels measures it), not the model's accuracy
  const run = flags.format === 'sequences' ? { ...cfg, analysis: { ...cfg.analysis, smoothing: 1 } } : cfg;
  const pipeline = await EmotionPipeline.create(run, log);
  const lines = flags.samples ? createWriteStream(flags.samples) : null;
  const bar = new SingleBar(
    { format: ' eval {bar} {value}/{total} | {eta_formatted} left', stream: process.stderr, noTTYOutput: false },
    Presets.shades_classic,
  );
  let started = false;
  try {
    const report = await evaluate(
      pipeline,
      {
        data: flags.data,
        format: flags.format,
        aligned: flags.aligned ?? false,
        actions: flags.actions ?? false,
        limit: flags.limit,
        fps: flags.fps ?? PLAY_FPS,
        playFps: PLAY_FPS,
        batch: 32,
        shown: shownLabels(pipeline.model.labels, cfg.analysis.hiddenLabels),
        mediapipeDir: cfg.models.mediapipeDir,
        onSample: (r) => lines?.write(`${JSON.stringify(r)}\n`),
        onProgress: (done, total) => {
          if (!started) bar.start(total, 0);
          started = true;
          bar.update(done);
        },
      },
      Math.min(cfg.analysis.minFrames, pipeline.model.window),
      log,
    );
    bar.stop();
    const extra = [
      `ECE ${(report.ece * 100).toFixed(1)}%   failed ${report.failed}   skipped folders ${report.skipped.length}   ${report.seconds} s`,
      ...(report.timeToLabelMs
        ? [
            `time to the right label: median ${report.timeToLabelMs.median ?? '-'} ms (reached in ${report.timeToLabelMs.reached}/${report.n})`,
          ]
        : []),
    ];
    process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : `${formatResult(report)}\n${extra.join('\n')}\n`);
  } finally {
    bar.stop();
    await new Promise<void>((res) => (lines ? lines.end(res) : res()));
    await pipeline.close();
  }
  return 0;
}
