import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, type Config } from './config.js';
import { createLogger } from './log.js';
import { runCommand } from './cli/run.js';
import { evalCommand, type EvalFlags } from './cli/eval.js';
import { tokenCommand, type TokenFlags } from './cli/token.js';
import { serveCommand } from './cli/serve.js';
import { modelsCalibrate, type CalibrateOptions } from './cli/calibrate.js';
import { modelsPull, modelsInfo, modelsWarmup } from './cli/models.js';

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
};
const positive = (v: string): number => {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('expected a positive number');
  return n;
};

interface Common {
  config?: string;
  host?: string;
  port?: number;
  fps?: number;
  threads?: number;
  maxFaces?: number;
  landmarkWorkers?: number;
  detector?: string;
  providers?: string;
  decoder?: string;
}

const flags = (o: Common) => ({
  analysis: { fps: o.fps, maxFaces: o.maxFaces, landmarkWorkers: o.landmarkWorkers, detector: o.detector },
  runtime: { threads: o.threads, providers: o.providers?.split(',').map((s) => s.trim()) },
  ingest: { decoder: o.decoder },
  serve: { host: o.host, port: o.port },
});

function config(o: Common): Config {
  return loadConfig(o.config, flags(o));
}

const common = (c: Command): Command =>
  c
    .option('--config <file>', 'JSON config file (defaults <- file <- ARPGNET_* env <- flags)')
    .option('--fps <n>', 'analysis rate in frames per second', positive)
    .option('--threads <n>', 'onnxruntime intra-op threads', int)
    .option('--max-faces <n>', 'faces analysed per frame', int)
    .option('--landmark-workers <n>', 'threads finding faces (0 = the main thread; default one per core)', int)
    .option('--detector <name>', 'yunet (default: five points, fast) or mediapipe (478-point mesh, adds head pose)')
    .option('--providers <list>', 'execution providers in order, e.g. tensorrt,cuda,cpu')
    .option('--decoder <name>', 'ffmpeg (default) or gstreamer');

export function program(): Command {
  const p = new Command('arpgnet-edge').description('Facial expression recognition on video streams with ARPGNet').showHelpAfterError();
  common(p.command('serve'))
    .description('the video-call server: mediasoup SFU, overlay page, signaling and emotion events for consenting participants')
    .option('--host <address>', 'HTTP/WebSocket listen address (default 127.0.0.1)')
    .option('--port <n>', 'HTTP/WebSocket port (default 8080, 0 = any free port)', int)
    .option('--role <list>', 'all (default), or any of sfu,analyser,gateway: the parts this process plays (needs --nats)')
    .option('--nats <url>', 'NATS server with JetStream joining the roles (env ARPGNET_NATS); none = one process')
    .option('--advertise <address>', 'address SFUs send this analyser RTP to (default 127.0.0.1)')
    .action(async (o: Common & { role?: string; nats?: string; advertise?: string }) => {
      const log = createLogger();
      const cfg = loadConfig(o.config, {
        ...flags(o),
        cluster: { roles: o.role?.split(',').map((r) => r.trim()), nats: o.nats, advertise: o.advertise },
      });
      process.exitCode = await serveCommand(cfg, log);
    });
  common(p.command('run'))
    .description('analyse a video file, an image-sequence folder or a camera and publish emotion events')
    .option('--input <path>', 'video file, folder of frames, or /dev/videoN (default: the demo clip)')
    .option('--events <file>', "write events as JSON Lines ('-' = stdout)")
    .option('--ws <port>', 'serve events on ws://host:port/events (0 = any free port)', int)
    .option('--report <file.html>', "write a timeline of each face's emotion probabilities")
    .option('--realtime', 'read a file at its own frame rate and drop frames like a live source')
    .option('--stream <id>', 'stream id in events (default: the input path)')
    .action(async (o: Common & { input?: string; events?: string; ws?: number; report?: string; realtime?: boolean; stream?: string }) => {
      const log = createLogger();
      process.exitCode = await runCommand(config(o), o, log);
    });
  common(p.command('eval'))
    .description('accuracy of the whole TypeScript pipeline on a labelled folder')
    .requiredOption('--data <dir>', 'DIR/<class>/<sequence>/<frames> or DIR/<class>/<image>')
    .requiredOption('--format <kind>', 'sequences | images')
    .option('--aligned', 'images are face crops already: skip detection, map the crop onto the model input')
    .option('--json', 'print one JSON object on stdout')
    .option('--limit <n>', 'at most n samples per class', int)
    .option('--samples <file>', 'write one JSON line per sample (path, truth, prediction, probabilities, per-frame labels)')
    .option('--actions', 'images: also run the landmarker for its blendshapes and write them with --samples (none found: null)')
    .action(async (o: Common & EvalFlags) => {
      const log = createLogger(o.json ? 'warn' : undefined);
      process.exitCode = await evalCommand(config(o), o, log);
    });
  p.command('token')
    .description('print a room token (JWT, HS256 with ARPGNET_AUTH_SECRET or auth.secret)')
    .option('--config <file>', 'JSON config file')
    .requiredOption('--room <room>', 'the room it admits to')
    .requiredOption('--identity <id>', 'who it is for')
    .requiredOption('--grant <grants...>', 'join, publish, subscribe, analyse, kiosk (repeat or comma-separate)')
    .option('--ttl <duration>', 'lifetime: 90s, 15m, 1h, 7d', '1h')
    .action(async (o: { config?: string } & TokenFlags) => {
      process.exitCode = await tokenCommand(loadConfig(o.config, {}), o);
    });
  const models = p.command('models').description('model files');
  models
    .command('pull')
    .description(
      'download what the models directory lacks: the MediaPipe face landmarker (size- or sha256-checked) and YuNet (checked by opening it)',
    )
    .option('--dir <dir>', 'models directory (default: ARPGNET_MODELS_DIR or .cache/models)')
    .option('--sha256 <hex>', 'refuse the landmarker download unless it has this sha256')
    .action(async (o: { dir?: string; sha256?: string }) => {
      process.exitCode = await modelsPull(o.dir, o.sha256, createLogger());
    });
  common(models.command('info'))
    .description('print the ARPGNet model metadata and the execution provider in use')
    .action(async (o: Common) => {
      process.exitCode = await modelsInfo(config(o), createLogger());
    });
  common(models.command('warmup'))
    .description('open the model with the configured providers once (builds and caches TensorRT engines) and print the timings')
    .action(async (o: Common) => {
      process.exitCode = await modelsWarmup(config(o), createLogger());
    });
  common(models.command('calibrate'))
    .description('INT8 calibration of the float encoder from aligned face crops: a TensorRT table and, with --ranges, the QDQ ranges')
    .requiredOption(
      '--faces <dir>',
      'aligned, square face crops (png/jpg) framed like the training crops, or a folder of class folders of them',
    )
    .requiredOption('--out <file>', 'TensorRT calibration table to write (set runtime.tensorrt.int8CalibrationTable to it)')
    .option('--encoder <file>', 'the float encoder to calibrate (default: models.encoder)')
    .option('--limit <n>', 'use at most n faces, spread over the folder', int)
    .option('--ranges <file>', "also write each tensor's percentile range as JSON (for training/arpgnet/quantize.py)")
    .option('--percentile <p>', 'the percentile the ranges keep (the rest is clipped)', Number, 99.99)
    .action(async (o: Common & CalibrateOptions) => {
      if (!(o.percentile > 50 && o.percentile <= 100)) throw new Error(`--percentile ${o.percentile}: must be in (50, 100]`);
      process.exitCode = await modelsCalibrate(config(o), o, createLogger());
    });
  return p;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (e) {
    process.stderr.write(`arpgnet-edge: ${(e as Error).message}\n`);
    process.exitCode = 2;
  }
}
