import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defer, finalize, type Observable } from 'rxjs';
import { sessionOptions, type Config } from '../config.js';
import type { Frame } from '../ingest/frame.js';
import type { Source } from '../ingest/source.js';
import type { Logger } from '../log.js';
import { ActionsModel, type ActionsBranch } from '../model/actions.js';
import { Arpgnet } from '../model/arpgnet.js';
import { EncoderBatcher } from '../model/batcher.js';
import type { PipelineEvent } from '../publish/events.js';
import type { Similarity } from './align.js';
import type { DetectedFace, FaceFinder, Inference } from './faces/face.js';
import { FacePool } from './faces/face-pool.js';
import { StreamFaces, type FaceFinderOptions } from './faces/stream-faces.js';
import { YuNetFaces } from './faces/yunet.js';
import { StreamState, type StreamStateOptions } from './stream-state.js';
import { shownLabels } from './labeller.js';
import { analyseStream } from './stream.js';

export interface AnalyseOptions {
  room?: string | undefined;
  onProgress?: ((decoded: number) => void) | undefined;
  /** Replace MediaPipe, e.g. for images that are already aligned crops. */
  faces?: Pick<FaceFinder, 'detect'> | undefined;
  align?: ((face: DetectedFace, frame: Frame) => Similarity) | undefined;
  /** Analysis rate for this stream (defaults to the configured one). */
  fps?: number | undefined;
  observe?: StreamStateOptions['observe'];
  /** Compute facial actions from the start (a subscriber asked for them). */
  actions?: boolean | undefined;
  /** The participant's own face selection and baseline, over the config's. */
  analysis?: { pick?: 'largest' | 'centre' | undefined; minHeightPx?: number | undefined; baseline?: boolean | undefined } | undefined;
}

export interface RunningStream {
  events$: Observable<PipelineEvent>;
  state: StreamState;
  /** The stream's face finder (null when faces come from elsewhere), e.g. to turn facial actions on. */
  faces: FaceFinder | null;
}

/** The model loaded once, and a fresh face tracker + stream state for each stream fed to it. */
export class EmotionPipeline {
  private constructor(
    readonly model: Arpgnet,
    private readonly cfg: Config,
    private readonly log: Logger,
    /** Face finding on worker threads (analysis.landmarkWorkers > 0), else on this thread. */
    readonly facePool: FacePool | null,
    /** YuNet's model, where it exists. */
    private readonly yunetPath: string | null,
    /** Encoder calls of all streams, batched (null: analysis.batchWaitMs 0). */
    readonly batcher: EncoderBatcher | null,
    /** The facial-actions branch (null: not configured or not installed). */
    readonly actions: ActionsBranch | null,
  ) {}

  static async create(cfg: Config, log: Logger): Promise<EmotionPipeline> {
    const model = await Arpgnet.load(cfg.models, sessionOptions(cfg), log);
    const t = performance.now();
    await model.warmup();
    log.info(
      {
        model: model.name,
        version: model.version,
        labels: model.labels,
        window: model.window,
        warmupMs: Math.round(performance.now() - t),
      },
      'model ready',
    );
    const workers = cfg.analysis.landmarkWorkers;
    let yunet: string | null = resolve(cfg.models.mediapipeDir, cfg.models.yunet);
    if (!existsSync(yunet)) {
      log.warn({ path: yunet }, 'no YuNet model: MediaPipe finds the faces, and faces too small for it will not be found');
      yunet = null;
    }
    const { width, height } = model.preprocess.inputSize;
    const batcher =
      cfg.analysis.batchWaitMs > 0
        ? new EncoderBatcher((f, n) => model.encode(f, n), model.channels * width * height, {
            waitMs: cfg.analysis.batchWaitMs,
            maxFaces: 16,
          })
        : null;
    const actions = await loadActions(cfg, model, log);
    const pool = workers > 0 ? new FacePool(workers, log) : null;
    if (pool && cfg.analysis.inference === 'workers') {
      const t0 = performance.now();
      try {
        await pool.loadModel({ files: { encoder: cfg.models.encoder, head: cfg.models.head }, opts: sessionOptions(cfg) });
      } catch (e) {
        await pool.close();
        await actions?.model.release();
        throw e;
      }
      log.info({ workers, ms: Math.round(performance.now() - t0) }, 'encoder and head loaded in the face workers');
    }
    return new EmotionPipeline(model, cfg, log, pool, yunet, batcher, actions);
  }

  /**
   * Loads MediaPipe in every face worker now rather than with the first stream (the
   * first open in a worker loads its wasm and costs several times a later one): an
   * analyser role that takes over a stream must answer fast.
   */
  async warmFaceFinders(): Promise<void> {
    const n = Math.max(1, this.facePool?.size ?? 1);
    const opened = await Promise.all(Array.from({ length: n }, () => this.faceFinder()));
    await Promise.all(opened.map((l) => l.close()));
  }

  /** A stream's face finder (see faces/stream-faces.ts), on a worker thread where there are workers. */
  async faceFinder(actions = this.cfg.analysis.actions): Promise<FaceFinder> {
    const a = this.cfg.analysis;
    const opts: FaceFinderOptions = {
      modelPath: join(this.cfg.models.mediapipeDir, 'mediapipe', 'face_landmarker.task'),
      maxFaces: a.maxFaces,
      actions,
      detector: this.yunetPath ? a.detector : 'mediapipe',
      yunetPath: this.yunetPath,
      yunetSize: a.detectorSize,
      smallFaces: a.smallFaces,
      redetect: a.redetect,
    };
    return this.facePool ? this.facePool.open(opts) : StreamFaces.create(opts);
  }

  /** How faces' mirror images are encoded (analysis.mirror); none where the encoder mirrors them itself. */
  get mirror(): 'average' | 'alternate' | 'none' {
    return this.model.flipAverage ? 'none' : this.cfg.analysis.mirror;
  }

  /** A fresh stream state on the shared model, configured from the config with any overrides. */
  createState(stream: string, faces: Pick<FaceFinder, 'detect' | 'inference'>, over: Partial<StreamStateOptions> = {}): StreamState {
    const a = this.cfg.analysis;
    return new StreamState({
      stream,
      model: this.model,
      encode: this.batcher ? this.batcher.encode.bind(this.batcher) : undefined,
      faces,
      maxFaces: a.maxFaces,
      stride: a.stride,
      minFrames: Math.min(a.minFrames, this.model.window),
      policy: {
        shown: shownLabels(this.model.labels, a.hiddenLabels),
        minConfidence: a.minConfidence,
        hold: a.hold,
        margin: a.margin,
        smoothing: a.smoothing,
        onset: a.onset,
      },
      maxGapMs: a.maxGapMs,
      emit: a.emit,
      trackMissMs: a.trackMissMs,
      pick: a.faces,
      attention: a.attention,
      summaryEveryMs: a.summaries.everySeconds === null ? null : a.summaries.everySeconds * 1000,
      baselineMs: a.baseline.enabled ? a.baseline.seconds * 1000 : null,
      mirror: this.mirror,
      actions: this.actions,
      ...this.inferenceOf(faces.inference),
      ...over,
    });
  }

  /** The stream's encoder and head calls on its face worker, where inference runs there (a batcher, when on, keeps the encoder here). */
  private inferenceOf(inf: Inference | null | undefined): Partial<StreamStateOptions> {
    if (!inf) return {};
    return { classify: inf.classify, ...(this.batcher ? {} : { encode: inf.encode }) };
  }

  async analyse(source: Source, o: AnalyseOptions = {}): Promise<RunningStream> {
    const lm = o.faces ? null : await this.faceFinder(this.cfg.analysis.actions || (o.actions ?? false));
    const faces = o.faces ?? lm!;
    const a = this.cfg.analysis;
    const own = o.analysis ?? {};
    const state = this.createState(source.id, faces, {
      room: o.room,
      align: o.align,
      observe: o.observe,
      pick: { pick: own.pick ?? a.faces.pick, minHeightPx: own.minHeightPx ?? a.faces.minHeightPx },
      baselineMs: (own.baseline ?? a.baseline.enabled) ? a.baseline.seconds * 1000 : null,
    });
    const events$ = analyseStream(source, state, this.model, {
      fps: o.fps ?? this.cfg.analysis.fps,
      lookahead: this.facePool !== null && !o.faces,
      room: o.room,
      maxFailedFrames: this.cfg.analysis.maxFailedFrames,
      onProgress: o.onProgress,
    });
    const batcher = this.batcher;
    const counted$ = batcher
      ? defer(() => {
          batcher.join();
          return events$.pipe(finalize(() => batcher.leave()));
        })
      : events$;
    // the face finder holds wasm memory: free it however the stream ends
    // a release that fails must not become an unhandled rejection
    const release = (): void => void lm?.close().catch((e: unknown) => this.log.warn({ err: e }, 'face finder did not close cleanly'));
    return { state, faces: lm, events$: counted$.pipe(finalize(release)) };
  }

  async close(): Promise<void> {
    await this.facePool?.close();
    // faces found on this thread (no workers) left their detector's session here
    if (!this.facePool) await YuNetFaces.releaseSessions();
    await this.model.release();
    await this.actions?.model.release();
    this.log.debug('pipeline closed');
  }
}

/** The configured facial-actions branch; a missing file leaves it off (said once), a broken one is refused. */
async function loadActions(cfg: Config, model: Arpgnet, log: Logger): Promise<ActionsBranch | null> {
  const path = cfg.models.actions;
  if (path === null) return null;
  if (!existsSync(path)) {
    log.warn({ path }, 'no facial-actions model: blendshapes, where computed, are published but not fused with the reading');
    return null;
  }
  const actions = await ActionsModel.load(path, sessionOptions(cfg), log);
  try {
    const idx = actions.indexIn(model.labels);
    log.info({ version: actions.version, classes: actions.classes }, 'facial-actions branch ready');
    return { model: actions, idx };
  } catch (e) {
    await actions.release();
    throw e;
  }
}
