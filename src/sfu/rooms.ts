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

  constructor(
    private readonly pool: WorkerPool,
    private readonly log: Logger,
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
    const router = await this.pool.pick().createRouter({ mediaCodecs: MEDIA_CODECS });
    const room = new Room(id, router);
    // the router goes with its worker if that dies: forget the room so the next join makes a new one
    router.observer.once('close', () => {
      this.rooms.delete(id);
      room.broadcast({ method: 'roomClosed', data: { reason: 'the media worker of this room stopped' } });
    });
    this.log.info({ room: id }, 'room opened');
    return room;
  }

  /** Drop the room once nobody is left in it. */
  release(room: Room): void {
    if (room.peers.size > 0) return;
    this.rooms.delete(room.id);
    room.router.close();
    this.log.info({ room: room.id }, 'room closed');
  }

  async closeAll(): Promise<void> {
    for (const r of this.rooms.values()) {
      const room = await r.catch(() => null);
      room?.router.close();
    }
    this.rooms.clear();
  }

  get size(): number {
    return this.rooms.size;
  }
}
