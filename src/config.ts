import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { mediapipeModelsDir, ROOT } from './paths.js';
import { EXEMPTIONS, PURPOSES } from './host/privacy.js';

const provider = z.enum(['tensorrt', 'cuda', 'cpu']);

export const Config = z
  .object({
    models: z.object({
      encoder: z.string(),
      head: z.string(),
      /** Folder holding mediapipe/face_landmarker.task and yunet/. */
      mediapipeDir: z.string(),
      /** YuNet face detector (an export with a dynamic input size); relative paths are under mediapipeDir. */
      yunet: z.string(),
      /**
       * The facial-actions branch: blendshapes -> terms fused with the head's reading
       * wherever the landmarker computes them (model/actions.ts); null: none.
       */
      actions: z.string().nullable(),
    }),
    analysis: z.object({
      fps: z.number().positive().max(120),
      maxSide: z.number().int().min(64).max(4096),
      maxFaces: z.number().int().min(1).max(32),
      stride: z.number().int().min(1),
      minFrames: z.number().int().min(1),
      smoothing: z.number().gt(0).max(1),
      /** Below this calibrated probability the label is 'uncertain'. */
      minConfidence: z.number().min(0).max(1),
      /** Windows a new label must lead before it replaces the shown one. */
      hold: z.number().int().min(1).max(100),
      /** Probability by which the shown label may trail the best one before it is challenged. */
      margin: z.number().min(0).max(1),
      /** The onset as reference for the label (labeller.ts): strength 0 turns it off. */
      onset: z.object({ windows: z.number().int().min(1).max(100), strength: z.number().min(0).max(1) }),
      /** Labels never shown (contempt by default: see the model card). */
      hiddenLabels: z.array(z.string()),
      /** Emotion events for every window, or only on a change of the shown label plus a heartbeat. */
      emit: z.object({ mode: z.enum(['window', 'change']), heartbeatMs: z.number().int().min(100) }),
      /**
       * Faces and alignment points: YuNet's five points (fast), or MediaPipe's mesh (adds
       * head pose to each event's quality, costs more: README, `npm run bench`).
       */
      detector: z.enum(['yunet', 'mediapipe']),
      /** YuNet's input for near faces, longer side in px (a multiple of 32). */
      detectorSize: z.number().int().min(128).max(1280).multipleOf(32),
      /**
       * Which simulcast layer of a call the analysis decodes: the low one (half size, a
       * quarter of the decoding) unless a producer asks for the full picture (the kiosk).
       */
      layer: z.enum(['low', 'high']),
      /** Where no face is found, look for small ones with YuNet at 640 px (kiosk distance). */
      smallFaces: z.boolean(),
      /**
       * YuNet's faces stand for up to `every` - 1 frames after a detection while the grey
       * under them changes by at most `motion` (mean absolute, 0..255); detected again on
       * motion, on loss and every `every` frames (1: every frame). See faces/reuse.ts.
       */
      redetect: z.object({ every: z.number().int().min(1).max(30), motion: z.number().min(0).max(255) }),
      /**
       * Encoder calls of several streams arriving within this many ms go through one run
       * (0: each stream runs its own).
       */
      batchWaitMs: z.number().min(0).max(50),
      /** Worker threads that find faces (0 = on the main thread). */
      landmarkWorkers: z.number().int().min(0).max(32),
      /**
       * Where the encoder and head run: in the face workers, beside each stream's face
       * finding (every core analyses; the main thread stays free for signaling and
       * events), or on the main thread (one session, as before 1.4). Needs landmarkWorkers > 0.
       */
      inference: z.enum(['workers', 'main']),
      /**
       * For an encoder without its own mirror pass: each face encoded with its mirror image
       * and the two averaged (average: what the model was measured with), every other frame
       * of a face encoded as its mirror instead (alternate: half the encoder's work, see the
       * model card), or none. An encoder that averages a face with its mirror itself
       * (arpgnet.flip_average) is given the faces as they are.
       */
      mirror: z.enum(['average', 'alternate', 'none']),
      /** Always compute facial actions (blendshapes); otherwise only while a subscriber asks (?actions=1). */
      actions: z.boolean(),
      maxGapMs: z.number().positive(),
      trackMissMs: z.number().nonnegative(),
      /** Frames in a row that may fail analysis before the stream ends with a fatal error. */
      maxFailedFrames: z.number().int().min(1),
      /** Which faces are analysed: at least minHeightPx high (analysed pixels), the maxFaces largest or (kiosk) nearest the centre. */
      faces: z.object({ pick: z.enum(['largest', 'centre']), minHeightPx: z.number().int().min(0).max(4096) }),
      /** Head turn (yaw) and nod (pitch) in degrees within which a face counts as looking at the screen. */
      attention: z.object({ maxYaw: z.number().min(1).max(90), maxPitch: z.number().min(1).max(90) }),
      /** A summary event per face every everySeconds (null: only when the face leaves and the stream ends). */
      summaries: z.object({ everySeconds: z.number().min(1).max(3600).nullable() }),
      /** A personal neutral baseline per face from its first `seconds` (opt-in; a page can also ask to calibrate). */
      baseline: z.object({ enabled: z.boolean(), seconds: z.number().min(0.5).max(60) }),
    }),
    /** Signed POSTs of stream_start, stream_end and summaries (publish/webhooks.ts), from the SFU that holds the room. */
    webhooks: z.object({
      endpoints: z.array(
        z.object({
          url: z
            .string()
            .url()
            .regex(/^https?:\/\//, 'a webhook URL is http:// or https://'),
          /** Standard Webhooks secret: whsec_ and base64 (at least 24 characters). */
          secret: z
            .string()
            .regex(/^whsec_[A-Za-z0-9+/]{24,}={0,2}$/, 'a webhook secret is whsec_ followed by at least 24 base64 characters'),
          events: z.array(z.enum(['stream_start', 'stream_end', 'summary'])).min(1),
        }),
      ),
      /** Deliveries held per endpoint while it is slow or down; past that the oldest are dropped (counted). */
      maxQueue: z.number().int().min(1).max(100_000),
      timeoutMs: z.number().int().min(100).max(60_000),
      maxAttempts: z.number().int().min(1).max(20),
      retryMs: z.number().int().min(10).max(60_000),
    }),
    runtime: z.object({
      providers: z.array(provider).min(1),
      threads: z.number().int().min(1).max(64),
      tensorrt: z.object({
        fp16: z.boolean(),
        engineCachePath: z.string().optional(),
        workspaceMb: z.number().int().positive().optional(),
        int8CalibrationTable: z.string().optional(),
      }),
    }),
    ingest: z.object({
      /** ffmpeg, or GStreamer (the hardware-decoding path on Jetson). */
      decoder: z.enum(['ffmpeg', 'gstreamer']),
      /** GStreamer: the pipeline up to decoded video, with {input}; default decodebin / v4l2src. */
      gstPipeline: z.string().optional(),
    }),
    publish: z.object({
      host: z.string(),
      maxQueue: z.number().int().min(1),
      /**
       * The event log, per room (in-process ring or JetStream stream alike): its last
       * ringSize events, at most ringMaxAgeMs old and cluster.retentionBytes large, are
       * what a subscriber that reconnects with its last seq can still get.
       */
      ringSize: z.number().int().min(1).max(1_000_000),
      ringMaxAgeMs: z.number().int().min(1000),
    }),
    privacy: z.object({
      /** What expressions are analysed for (PRIVACY.md); workplace and education are refused without an exemption. */
      purpose: z.enum(PURPOSES),
      exemption: z.enum(EXEMPTIONS).optional(),
      /** Append-only log of consent given and withdrawn (no images, no emotions); off when unset. */
      auditLog: z.string().optional(),
    }),
    auth: z.object({
      /** auto: required unless serve.host is loopback. */
      mode: z.enum(['auto', 'on', 'off']),
      /** HS256 secret for room tokens (ARPGNET_AUTH_SECRET); at least 32 characters. */
      secret: z.string().min(32).optional(),
      /** Or EdDSA: an Ed25519 public key (PEM file) checks tokens minted elsewhere; the private one lets `token` sign. */
      publicKeyFile: z.string().optional(),
      privateKeyFile: z.string().optional(),
      /** Browser origins allowed besides the page's own ('*' = any). */
      origins: z.array(z.string()),
    }),
    /** Scale-out: which roles this process plays, and the NATS server that joins them (docs/deploy.md). */
    cluster: z.object({
      /** all = SFU, analyser and events gateway in one process; without nats that is the single-box server. */
      roles: z.array(z.enum(['all', 'sfu', 'analyser', 'gateway'])).min(1),
      /** NATS with JetStream (env ARPGNET_NATS); none = one process on an in-process bus. */
      nats: z.string().optional(),
      /** This process's id on the bus (default host-pid). */
      id: z
        .string()
        .regex(/^[\w-]{1,64}$/)
        .optional(),
      /** The address SFUs send an analyser's RTP to (this host, as the SFU hosts reach it). */
      advertise: z.string(),
      /** Bytes of events kept per room in the log (see publish.ringSize). */
      retentionBytes: z.number().int().min(1024),
      /** Public ws(s):// URLs of the gateways' /events, told to the pages when this SFU serves no /events itself. */
      eventsUrls: z.array(z.string().regex(/^wss?:\/\//, 'a ws:// or wss:// URL')),
    }),
    /** What one client or the whole server may ask for; every refusal is counted (/metrics). */
    limits: z.object({
      /** Signaling requests per second per connection, and the burst allowed at once. */
      requestsPerSecond: z.number().positive(),
      requestBurst: z.number().int().min(1),
      /** Largest signaling message answered (larger ones get an error; four times this closes the socket). */
      messageBytes: z
        .number()
        .int()
        .min(1024)
        .max(1 << 22),
      peersPerRoom: z.number().int().min(1),
      producersPerRoom: z.number().int().min(1),
      rooms: z.number().int().min(1),
      /** WebSocket connections at once, /signaling and /events together. */
      connections: z.number().int().min(1),
    }),
    serve: z.object({
      host: z.string(),
      port: z.number().int().min(0).max(65535),
      /** Streams analysed at once; producers over the limit are routed but not analysed. */
      maxStreams: z.number().int().min(1),
      /** Decoder restarts per stream before it is given up. */
      decoderRestarts: z.number().int().min(0),
    }),
    sfu: z.object({
      /** mediasoup worker processes; 0 = one per core. */
      workers: z.number().int().min(0).max(64),
      /** Where WebRTC media is received; 0.0.0.0 needs announcedAddress. */
      listenIp: z.string(),
      announcedAddress: z.string().optional(),
      rtcMinPort: z.number().int().min(1024).max(65535),
      rtcMaxPort: z.number().int().min(1024).max(65535),
      maxIncomingBitrate: z.number().int().positive(),
      initialOutgoingBitrate: z.number().int().positive(),
    }),
  })
  .refine((c) => c.sfu.rtcMinPort <= c.sfu.rtcMaxPort, { message: 'rtcMinPort must not exceed rtcMaxPort', path: ['sfu', 'rtcMinPort'] })
  .refine((c) => c.sfu.listenIp !== '0.0.0.0' || !!c.sfu.announcedAddress, {
    message: 'listening on 0.0.0.0 needs sfu.announcedAddress (the address browsers reach)',
    path: ['sfu', 'announcedAddress'],
  });
export type Config = z.infer<typeof Config>;

export function defaults(): Config {
  return {
    models: {
      // the CPU's int8 encoder (1.3.1's weights; MODEL_CARD.md): TensorRT hosts name the float graph instead
      encoder: resolve(ROOT, 'models/arpgnet-edge.encoder.int8.onnx'),
      head: resolve(ROOT, 'models/arpgnet-edge.head.onnx'),
      mediapipeDir: mediapipeModelsDir(),
      yunet: 'yunet/yunet_s_dynamic.onnx',
      actions: resolve(ROOT, 'models/arpgnet-edge.actions.onnx'),
    },
    analysis: {
      fps: 10,
      maxSide: 640,
      maxFaces: 4,
      stride: 1,
      minFrames: 3,
      smoothing: 0.4,
      minConfidence: 0.35,
      hold: 5,
      margin: 0.25,
      // median label flips a minute on the shared clips 14.1 -> 6.92, dev sequences shown right at 30 fps 10 -> 12 of 20 (bench:labels)
      onset: { windows: 1, strength: 0.4 },
      hiddenLabels: ['contempt'],
      emit: { mode: 'window', heartbeatMs: 1000 },
      actions: false,
      detector: 'yunet',
      detectorSize: 320,
      layer: 'low',
      // batching measured no gain for the edge encoder (bench:serve setups new and batch)
      batchWaitMs: 0,
      // finding faces runs beside the encoder: one worker per core (README, bench:serve)
      landmarkWorkers: availableParallelism(),
      // the main thread ran out at about ten streams while the workers idled (bench:serve)
      inference: 'workers',
      mirror: 'average',
      smallFaces: true,
      // a third of YuNet's runs on a steady talking head, labels unchanged (bench, bench:labels)
      redetect: { every: 3, motion: 3 },
      maxGapMs: 1000,
      trackMissMs: 500,
      maxFailedFrames: 30,
      faces: { pick: 'largest', minHeightPx: 0 },
      // the yaw at which MediaPipe's landmarks still hold both eyes, and a nod to a laptop's keyboard
      attention: { maxYaw: 30, maxPitch: 20 },
      summaries: { everySeconds: null },
      baseline: { enabled: false, seconds: 3 },
    },
    webhooks: { endpoints: [], maxQueue: 1000, timeoutMs: 5000, maxAttempts: 8, retryMs: 500 },
    // one intra-op thread: a second buys 7 % on one face (bench:model) and costs more CPU
    // than it saves once several streams keep the cores busy (bench:serve, README)
    runtime: { providers: ['tensorrt', 'cuda', 'cpu'], threads: 1, tensorrt: { fp16: true } },
    ingest: { decoder: 'ffmpeg' },
    publish: { host: '127.0.0.1', maxQueue: 256, ringSize: 2048, ringMaxAgeMs: 5 * 60_000 },
    privacy: { purpose: 'personal' },
    auth: { mode: 'auto', origins: [] },
    cluster: { roles: ['all'], advertise: '127.0.0.1', retentionBytes: 64 << 20, eventsUrls: [] },
    limits: {
      requestsPerSecond: 20,
      requestBurst: 60,
      messageBytes: 64 * 1024,
      peersPerRoom: 16,
      producersPerRoom: 32,
      rooms: 200,
      connections: 2000,
    },
    serve: { host: '127.0.0.1', port: 8080, maxStreams: 4, decoderRestarts: 3 },
    sfu: {
      workers: 0,
      listenIp: '127.0.0.1',
      rtcMinPort: 40000,
      rtcMaxPort: 49999,
      maxIncomingBitrate: 1_500_000,
      initialOutgoingBitrate: 1_000_000,
    },
  };
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

function merge(a: Plain, b: Plain): Plain {
  const out: Plain = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    out[k] = isPlain(v) && isPlain(out[k]) ? merge(out[k] as Plain, v) : v;
  }
  return out;
}

/** ARPGNET_* variables that override the file. */
function fromEnv(env: NodeJS.ProcessEnv): Plain {
  const num = (k: string): number | undefined => (env[k] !== undefined ? Number(env[k]) : undefined);
  return {
    models: { encoder: env['ARPGNET_ENCODER'], head: env['ARPGNET_HEAD'], mediapipeDir: env['ARPGNET_MODELS_DIR'] },
    analysis: {
      fps: num('ARPGNET_FPS'),
      maxFaces: num('ARPGNET_MAX_FACES'),
      minConfidence: num('ARPGNET_MIN_CONFIDENCE'),
      hiddenLabels: env['ARPGNET_HIDDEN_LABELS']
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    },
    runtime: { threads: num('ARPGNET_THREADS'), providers: env['ARPGNET_PROVIDERS']?.split(',').map((s) => s.trim()) },
    ingest: { decoder: env['ARPGNET_DECODER'] },
    privacy: { purpose: env['ARPGNET_PURPOSE'], auditLog: env['ARPGNET_AUDIT_LOG'] },
    auth: {
      mode: env['ARPGNET_AUTH'],
      secret: env['ARPGNET_AUTH_SECRET'],
      publicKeyFile: env['ARPGNET_AUTH_PUBLIC_KEY_FILE'],
      privateKeyFile: env['ARPGNET_AUTH_PRIVATE_KEY_FILE'],
      origins: env['ARPGNET_ORIGINS']?.split(',').map((s) => s.trim()),
    },
    serve: { port: num('ARPGNET_PORT'), maxStreams: num('ARPGNET_MAX_STREAMS') },
    cluster: {
      nats: env['ARPGNET_NATS'],
      roles: env['ARPGNET_ROLE']?.split(',').map((s) => s.trim()),
      advertise: env['ARPGNET_ADVERTISE'],
      id: env['ARPGNET_ID'],
      eventsUrls: env['ARPGNET_EVENTS_URLS']?.split(',').map((s) => s.trim()),
    },
    sfu: { listenIp: env['ARPGNET_LISTEN_IP'], announcedAddress: env['ARPGNET_ANNOUNCED_ADDRESS'] },
  };
}

/** defaults <- config file <- environment <- command-line flags, validated as a whole. */
export function loadConfig(file: string | undefined, flags: Plain, env: NodeJS.ProcessEnv = process.env): Config {
  let fileCfg: Plain = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (!isPlain(parsed)) throw new Error('not an object');
      fileCfg = parsed;
    } catch (e) {
      throw new Error(`config file ${file}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
  }
  const merged = merge(merge(merge(defaults() as unknown as Plain, fileCfg), fromEnv(env)), flags);
  const r = Config.safeParse(merged);
  if (!r.success) {
    throw new Error(`invalid configuration: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return r.data;
}

/** The onnxruntime session settings the config describes. */
export function sessionOptions(cfg: Config): {
  providers: Config['runtime']['providers'];
  intraOpThreads: number;
  tensorrt: Config['runtime']['tensorrt'];
} {
  return { providers: cfg.runtime.providers, intraOpThreads: cfg.runtime.threads, tensorrt: cfg.runtime.tensorrt };
}
