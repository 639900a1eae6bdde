import type { Device, types } from 'mediasoup-client';
import { createTransport, joinRoom, pageToken, Rejoiner, sendCamera } from '../common/call.js';
import { EventsClient } from '../../src/client/index.js';
import { FaceLayer } from '../common/faces.js';
import type { Notification, Signaling } from '../common/signaling.js';
import type { ConsumeReply, ProducerInfo } from '../../src/sfu/protocol.js';

/**
 * The conference overlay: join a room with the camera, see every participant, and
 * over each face the emotion the server reads (only for those who consented).
 */
const q = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(sel: string): T => document.querySelector<T>(sel)!;
const roomInput = $<HTMLInputElement>('#room');
const nameInput = $<HTMLInputElement>('#name');
const consentBox = $<HTMLInputElement>('#consent');
const joinButton = $<HTMLButtonElement>('#join');
const calibrateButton = $<HTMLButtonElement>('#calibrate');
const statusEl = $('#status');
const grid = $('#grid');
roomInput.value = q.get('room') ?? 'demo';
nameInput.value = q.get('name') ?? `guest-${Math.floor(Math.random() * 1000)}`;
consentBox.checked = q.get('consent') === '1';

const tiles = new Map<string, { el: HTMLElement; layer: FaceLayer }>();
let sig: Signaling | null = null;
let events: EventsClient | null = null;
let device: Device | null = null;
let recv: types.Transport | null = null;
let send: types.Transport | null = null;
let camera: MediaStream | null = null;
let rejoiner: Rejoiner | null = null;

function status(text: string, state?: string): void {
  statusEl.textContent = text;
  if (state) document.body.dataset['state'] = state;
}

function tile(producerId: string, name: string, stream: MediaStream, self: boolean): void {
  const el = document.createElement('figure');
  el.className = 'tile';
  el.dataset['producer'] = producerId;
  el.innerHTML = `<div class="media"><video autoplay playsinline muted></video><div class="faces"></div></div>
    <figcaption><b></b><span class="analysed"></span></figcaption>`;
  el.querySelector('b')!.textContent = self ? `${name} (you)` : name;
  const video = el.querySelector('video')!;
  video.srcObject = stream;
  grid.appendChild(el);
  tiles.set(producerId, { el, layer: new FaceLayer(video, el.querySelector('.faces')!) });
}

function setAnalysed(producerId: string, analysed: boolean): void {
  const t = tiles.get(producerId);
  if (!t) return;
  t.el.dataset['analysed'] = String(analysed);
  t.el.querySelector('.analysed')!.textContent = analysed ? 'expressions analysed' : 'not analysed';
  if (!analysed) t.layer.clear();
}

function dropTile(producerId: string): void {
  tiles.get(producerId)?.layer.dispose();
  tiles.get(producerId)?.el.remove();
  tiles.delete(producerId);
}

async function consume(p: ProducerInfo): Promise<void> {
  if (p.kind !== 'video' || !recv || !device || !sig || tiles.has(p.producerId)) return;
  const c = await sig.request<ConsumeReply>('consume', {
    transportId: recv.id,
    producerId: p.producerId,
    rtpCapabilities: device.rtpCapabilities,
  });
  const consumer = await recv.consume({
    id: c.id,
    producerId: c.producerId,
    kind: c.kind,
    rtpParameters: c.rtpParameters as unknown as types.RtpParameters,
  });
  tile(p.producerId, p.name, new MediaStream([consumer.track]), false);
  setAnalysed(p.producerId, p.analysed);
  await sig.request('resumeConsumer', { consumerId: c.id });
}

function onNotification(n: Notification): void {
  if (n.method === 'newProducer') void consume(n.data).catch((e: Error) => status(e.message));
  else if (n.method === 'producerClosed') dropTile(n.data.producerId);
  else if (n.method === 'analysis') setAnalysed(n.data.producerId, n.data.analysed);
  else if (n.method === 'roomClosed') {
    if (n.data.rejoin) rejoiner?.lost(`room closed: ${n.data.reason}`);
    else status(`room closed: ${n.data.reason}`, 'closed');
  }
}

function listen(room: string, urls: string[]): void {
  // the same client integrators use: token from the page's fragment, reconnect and resume by seq
  events = new EventsClient({ url: urls, room, token: pageToken() });
  events.on((e) => {
    if (e.type === 'gap' || e.type === 'summary') return;
    const t = tiles.get(e.stream);
    if (!t) return;
    if (e.type === 'stream_start') t.layer.frame = { width: e.source.width, height: e.source.height };
    else if (e.type === 'emotion') t.layer.show(e);
    else if (e.type === 'face_leave') t.layer.remove(e.track);
    else if (e.type === 'stream_end') t.layer.clear();
  });
}

/** The call itself, run again by the rejoiner whenever it is lost; the camera stays open across. */
async function connect(room: string, name: string): Promise<void> {
  const j = await joinRoom(room, name, consentBox.checked);
  sig = j.sig;
  // the events client outlives rejoins: it reconnects and resumes on its own
  if (!events) listen(room, j.events);
  device = j.device;
  sig.onNotification = onNotification;
  sig.onClose = () => rejoiner?.lost('signaling connection closed');
  document.body.dataset['peer'] = j.peerId;
  const lost = (d: string) => () => rejoiner?.lost(`${d} connection failed`);
  recv = await createTransport(sig, device, 'recv', lost('receive'));
  for (const p of j.producers) await consume(p);
  const track = camera!.getVideoTracks()[0]!;
  send = await createTransport(sig, device, 'send', lost('send'));
  const producer = await sendCamera(send, track, { simulcast: true });
  document.body.dataset['producer'] = producer.id;
  tile(producer.id, name, new MediaStream([track]), true);
  setAnalysed(producer.id, consentBox.checked);
  status(`in room ${room}`, 'joined');
}

/** This page's side of the call, closed without closing the camera. */
function teardown(): void {
  if (sig) sig.onClose = () => {};
  sig?.close();
  send?.close();
  recv?.close();
  sig = null;
  send = recv = null;
  for (const id of [...tiles.keys()]) dropTile(id);
}

async function join(): Promise<void> {
  joinButton.disabled = true;
  status('joining…');
  const room = roomInput.value.trim();
  const name = nameInput.value.trim() || 'guest';
  camera = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  rejoiner = new Rejoiner(
    () => connect(room, name),
    teardown,
    (ms, why) => status(`${why}; rejoining in ${(ms / 1000).toFixed(1)} s`, 'rejoining'),
  );
  try {
    await connect(room, name);
  } catch (e) {
    rejoiner.stop();
    teardown();
    events?.close();
    events = null;
    throw e;
  }
  joinButton.textContent = 'Leave';
  joinButton.disabled = false;
  calibrateButton.disabled = false;
  joinButton.onclick = () => leave();
}

function leave(): void {
  rejoiner?.stop();
  teardown();
  events?.close();
  events = null;
  camera?.getTracks().forEach((t) => t.stop());
  status('left', 'left');
  calibrateButton.disabled = true;
  joinButton.textContent = 'Join';
  joinButton.onclick = () => void join().catch(failed);
}

function failed(e: Error): void {
  status(`error: ${e.message}`, 'failed');
  joinButton.disabled = false;
}

consentBox.addEventListener('change', () => {
  // the toggle works before and during the call
  if (sig && document.body.dataset['state'] === 'joined') void sig.request('setConsent', { consent: consentBox.checked }).catch(failed);
});
calibrateButton.onclick = () => {
  const producerId = document.body.dataset['producer'];
  if (!sig || !producerId) return;
  sig
    .request('calibrate', { producerId })
    .then(() => status('calibrating: keep a resting face for 3 seconds'))
    .catch((e: Error) => status(`calibrate: ${e.message}`));
};
joinButton.onclick = () => void join().catch(failed);
if (q.get('autostart') === '1') void join().catch(failed);
