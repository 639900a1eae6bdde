/**
 * Subject and stream names on NATS, in one place. A room id may hold '.', which NATS
 * reads as a token separator: it is written '%2E' (room ids never hold '%').
 */
export const roomToken = (room: string): string => room.replaceAll('.', '%2E');

/** Every event of a room and stream; gateways serve /events from these. */
export const eventSubject = (room: string, stream: string): string => `arpgnet.events.${roomToken(room)}.${stream}`;
export const roomEvents = (room: string): string => `arpgnet.events.${roomToken(room)}.>`;

/**
 * One JetStream stream per room, so its sequence numbers are the room's own and
 * contiguous: a subscriber resumes from the last one it saw on any gateway. Stream
 * names allow no '.', '*', '>' or spaces: the room id is hex-encoded.
 */
export const roomStream = (room: string): string => `ARPGNET_ROOM_${Buffer.from(room, 'utf8').toString('hex')}`;

/** Analysers say they are alive, and how loaded, on this subject (the lease). */
export const ANALYSER_HEARTBEAT = 'arpgnet.analysers.heartbeat';
/** SFUs say they are alive; an analyser ends the streams of an SFU that went quiet. */
export const SFU_HEARTBEAT = 'arpgnet.sfu.heartbeat';
/** Requests to one analyser: start or stop analysing a stream. */
export const analyserControl = (analyser: string): string => `arpgnet.analyser.${analyser}.control`;
/** Requests to one SFU: a key frame for a stream. */
export const sfuControl = (sfu: string): string => `arpgnet.sfu.${sfu}.control`;
