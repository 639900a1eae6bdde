import { FaceLayer, labelText, type EmotionEvent } from '../common/faces.js';
import { UNCERTAIN } from '../../src/pipeline/labeller.js';
import { EventsClient } from '../../src/client/index.js';
import { createTransport, joinRoom, pageToken, Rejoiner, sendCamera } from '../common/call.js';
import type { Signaling } from '../common/signaling.js';

/**
 * The kiosk screen: the camera full screen (mirrored), the expression of the person
 * in front in large letters, an idle screen when nobody is there, the privacy notice
 * always visible, and an off switch that stops the analysis on the server.
 * `/kiosk?room=kiosk&idleMs=4000`
 */
const q = new URLSearchParams(location.search);
const room = q.get('room') ?? 'kiosk';
const idleMs = Number(q.get('idleMs') ?? 4000);
const $ = (id: string): HTMLElement => document.getElementById(id)!;
const video = $('camera') as HTMLVideoElement;
const layer = new FaceLayer(video, $('faces'), { bars: false, mirror: true });
const body = document.body.dataset;
let lastFace = 0;
let analysing = true;

function status(s: string, state?: string): void {
  $('status').textContent = s;
  if (state) body['state'] = state;
}

function showBiggest(e: EmotionEvent): void {
  lastFace = performance.now();
  body['presence'] = 'present';
  // an uncertain reading is shown as such, never as its runner-up; a label that is changing says so
  const t = labelText(e);
  $('big-label').textContent = e.label === UNCERTAIN ? 'uncertain' : e.label;
  $('big-score').textContent = e.label === UNCERTAIN ? '' : t.text.slice(e.label.length + 1);
  body['label'] = e.label;
  body['changing'] = String(t.changing);
  body['away'] = String(e.attention.looking === false);
}

setInterval(() => {
  if (performance.now() - lastFace > idleMs) {
    body['presence'] = 'idle';
    delete body['label'];
  }
}, 250);

let sig: Signaling | null = null;
let events: EventsClient | null = null;
let send: { close(): void } | null = null;

/** Joins, publishes the camera and follows its events; run again whenever the call is lost. */
async function connect(camera: MediaStream, rejoiner: Rejoiner): Promise<void> {
  // a kiosk reads the person in front of it, not the passers-by behind
  const j = await joinRoom(room, 'kiosk', analysing, { pick: 'centre' });
  sig = j.sig;
  sig.onClose = () => rejoiner.lost('server connection lost');
  sig.onNotification = (n) => {
    if (n.method === 'roomClosed' && n.data.rejoin) rejoiner.lost(`room closed: ${n.data.reason}`);
  };
  const t = await createTransport(sig, j.device, 'send', () => rejoiner.lost('media connection failed'));
  send = t;
  const producer = await sendCamera(t, camera.getVideoTracks()[0]!, { simulcast: false });
  body['producer'] = producer.id;
  events = new EventsClient({ url: j.events, room, stream: producer.id, token: pageToken() });
  const widest = new Map<string, EmotionEvent>();
  events.on((e) => {
    if (e.type === 'stream_start') layer.frame = { width: e.source.width, height: e.source.height };
    if (e.type === 'emotion') {
      const ev = e;
      layer.show(ev);
      widest.set(ev.track, ev);
      // the big label follows the nearest person: the widest face seen recently
      const best = [...widest.values()].sort((a, b) => b.box.w - a.box.w)[0]!;
      showBiggest(best.track === ev.track ? ev : best);
    }
    if (e.type === 'face_leave') {
      layer.remove(e.track);
      widest.delete(e.track);
    }
  });
  body['analysis'] = analysing ? 'on' : 'off';
  status(`room ${room}`, 'running');
}

function teardown(): void {
  if (sig) sig.onClose = () => {};
  sig?.close();
  send?.close();
  events?.close();
  sig = send = events = null;
  layer.clear();
}

async function start(): Promise<void> {
  const camera = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
  video.srcObject = camera;
  const rejoiner: Rejoiner = new Rejoiner(
    () => connect(camera, rejoiner),
    teardown,
    (ms, why) => status(`${why}; reconnecting in ${(ms / 1000).toFixed(1)} s`, 'closed'),
  );
  const off = $('off') as HTMLButtonElement;
  off.onclick = async () => {
    analysing = !analysing;
    await sig?.request('setConsent', { consent: analysing });
    body['analysis'] = analysing ? 'on' : 'off';
    off.textContent = analysing ? 'Turn off' : 'Turn on';
    if (!analysing) layer.clear();
  };
  await connect(camera, rejoiner).catch((e: Error) => rejoiner.lost(e.message));
}

start().catch((e: Error) => {
  // no camera (or it was refused): nothing to rejoin with, so start over
  status(`error: ${e.message}; retrying`, 'failed');
  setTimeout(() => location.reload(), 5000);
});
