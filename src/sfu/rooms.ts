import type { types } from 'mediasoup';
import type { Logger } from '../log.js';
import { Room } from './room.js';
import type { WorkerPool } from './workers.js';

/**
 * The codecs a room routes. Video is limited to what the server-side decoder reads
 * from an SDP (VP8, H264 constrained baseline), so every analysed track can be decoded.
 */
export const MEDIA_CODECS: types.RouterRtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000, parameters: {} },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
  },
];

/** Rooms by id, each on a router of the next worker; a room closes with its last peer. */
export class Rooms {
  private readonly rooms = new Map<string, Promise<Room>>();
  /** The room now open under each id; a room that died may still be released by its last peers. */
  private readonly open = new Map<string, Room>();
  /** Rooms rebuilt after their media worker died. */
  rebuilt = 0;

  constructor(
    private readonly pool: WorkerPool,
    private readonly log: Logger,
    /** Told when a room closes because its last peer left (not when its worker died: that room is rebuilt). */
    private readonly onClosed: (room: string) => void = () => undefined,
  ) {}

  get(id: string): Promise<Room> {
    let r = this.rooms.get(id);
    if (!r) {
      r = this.create(id);
      this.rooms.set(id, r);
      r.catch(() => this.rooms.delete(id));
    }
    return r;
  }

  private async create(id: string): Promise<Room> {
    const router = await (await this.pool.pick()).createRouter({ mediaCodecs: MEDIA_CODECS });
    const room = new Room(id, router, this.log.child({ room: id }));
    this.open.set(id, room);
    // the router goes with its worker if that dies: forget the room so the next join makes a new one
    // on a live worker, and tell its peers to rejoin (their signaling clients drop the dead room)
    router.observer.once('close', () => {
      if (!this.forget(room)) return;
      this.rebuilt++;
      room.broadcast({ method: 'roomClosed', data: { reason: 'the media worker of this room stopped', rejoin: true } });
      room.closed();
    });
    room.log.info('room opened');
    return room;
  }

  /** Drop the room once nobody is left in it. */
  release(room: Room): void {
    if (room.peers.size > 0) return;
    if (this.forget(room)) {
      room.log.info('room closed');
      this.onClosed(room.id);
    }
    room.router.close();
  }

  /** Only the room still open under its id is forgotten: a dead room's last peers must not drop its successor. */
  private forget(room: Room): boolean {
    if (this.open.get(room.id) !== room) return false;
    this.open.delete(room.id);
    this.rooms.delete(room.id);
    return true;
  }

  async closeAll(): Promise<void> {
    const all = [...this.rooms.values()];
    // forgotten first: a shutdown is not a worker death, nobody is asked to rejoin
    this.rooms.clear();
    this.open.clear();
    for (const r of all) (await r.catch(() => null))?.router.close();
  }

  get size(): number {
    return this.rooms.size;
  }

  /** Participants joined to a room now, over every room. */
  get peers(): number {
    let n = 0;
    for (const r of this.open.values()) n += r.peers.size;
    return n;
  }

  has(id: string): boolean {
    return this.rooms.has(id);
  }
}
