import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { lastValueFrom, tap } from 'rxjs';
import type { Config } from '../config.js';
import { openSource } from '../ingest/source.js';
import type { Logger } from '../log.js';
import { EmotionPipeline } from '../pipeline/emotion-pipeline.js';
import type { PipelineEvent, StreamEndEvent } from '../publish/events.js';
import { JsonlSink } from '../publish/jsonl.js';
import { writeReport } from '../publish/report.js';
import { serveEvents, type EventsServing } from '../roles/serve.js';
import { sharedDir } from '../paths.js';

export interface RunFlags {
  input?: string | undefined;
  events?: string | undefined;
  ws?: number | undefined;
  report?: string | undefined;
  realtime?: boolean | undefined;
  stream?: string | undefined;
}

/** The demo clip that ships beside the project, so `run` with no input shows something. */
export function defaultInput(): string {
  return join(sharedDir(), 'data', 'videos', 'd18.mp4');
}

export async function runCommand(cfg: Config, flags: RunFlags, log: Logger): Promise<number> {
  const input = flags.input ?? defaultInput();
  if (!flags.input && !existsSync(input)) throw new Error('no --input given and no demo clip found; pass --input <file|dir|/dev/videoN>');
  const source = await openSource(
    input,
    {
      maxSide: cfg.analysis.maxSide,
      sequenceFps: 30,
      realtime: flags.realtime ?? false,
      decoder: cfg.ingest.decoder,
      gstPipeline: cfg.ingest.gstPipeline,
    },
    flags.stream ?? input,
  );
  const pipeline = await EmotionPipeline.create(cfg, log);
  const sink = flags.events ? new JsonlSink(flags.events) : null;
  let hub: EventsServing | null = null;
  if (flags.ws !== undefined)
    hub = await serveEvents(cfg, log, flags.ws).catch(async (e: unknown) => {
      // the pipeline's landmark workers would keep the process alive: close what was opened
      source.stop();
      await pipeline.close();
      throw e;
    });
  const total = source.info.frames;
  const bar =
    source.kind !== 'camera' && process.stderr.isTTY && total
      ? new SingleBar(
          { format: ' {bar} {percentage}% | {value}/{total} frames | {eta_formatted} left', stream: process.stderr },
          Presets.shades_classic,
        )
      : null;
  bar?.start(total ?? 0, 0);
  const history: PipelineEvent[] = [];
  let end: StreamEndEvent | null = null;
  const stop = (): void => source.stop();
  const running = await pipeline.analyse(source, { onProgress: (n) => bar?.update(Math.min(n, total ?? n)) });
  const done = lastValueFrom(
    running.events$.pipe(
      tap((e) => {
        sink?.write(e);
        hub?.publish(e);
        if (flags.report) history.push(e);
        if (e.type === 'stream_end') end = e;
        if (e.type === 'error') log[e.fatal ? 'error' : 'warn']({ code: e.code }, e.message);
      }),
    ),
    { defaultValue: null },
  );
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await done;
  bar?.stop();
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  await sink?.close();
  await hub?.close();
  await pipeline.close();
  const t = running.state.times;
  const finalEnd = end as StreamEndEvent | null;
  const stats = finalEnd?.stats;
  log.info(
    {
      ...stats,
      msPerStage: {
        landmarks: +(t.landmarks / Math.max(1, running.state.analysed)).toFixed(2),
        align: +(t.align / Math.max(1, t.faceFrames)).toFixed(2),
        encoder: +(t.encoder / Math.max(1, t.faceFrames)).toFixed(2),
        head: +(t.head / Math.max(1, t.windows)).toFixed(2),
      },
    },
    'stream finished',
  );
  if (flags.report) {
    await writeReport(flags.report, history, pipeline.model.labels);
    log.info({ report: flags.report }, 'report written');
  }
  return finalEnd?.reason === 'error' || !finalEnd ? 1 : 0;
}
