/**
 * Subject and stream names on NATS, in one place. A room id may hold '.', which NATS
 * reads as a token separator: it is written '%2E' (room ids never hold '%').
 */
export const roomToken = (room: string): string => room.replaceAll('.', '%2E');

/** The stream token of a room's own events (its summary), which no stream id takes: ids never start with '_'. */
export const ROOM_ITSELF = '_room';

/** Every event of a room and stream; gateways serve /events from these. */
export const eventSubject = (room: string, stream: string): string => `arpgnet.events.${roomToken(room)}.${stream}`;
/** A room's events, or every room's (null). */
export const roomEvents = (room: string | null): string => `arpgnet.events.${room === null ? '*' : roomToken(room)}.>`;

/**
 * One JetStream stream per room, so its sequence numbers are the room's own and
 * contiguous: a subscriber resumes from the last one it saw on any gateway. Stream
 * names allow no '.', '*', '>' or spaces: the room id is hex-encoded.
 */
const ROOM_PREFIX = 'ARPGNET_ROOM_';
export const roomStream = (room: string): string => `${ROOM_PREFIX}${Buffer.from(room, 'utf8').toString('hex')}`;
/** The room of a stream name, or null when the stream is not a room's. */
export const roomOfStream = (name: string): string | null =>
  name.startsWith(ROOM_PREFIX) ? Buffer.from(name.slice(ROOM_PREFIX.length), 'hex').toString('utf8') : null;

/** JetStream's advisory for each stream made: a reader of every room opens the new ones. */
export const STREAM_CREATED = '$JS.EVENT.ADVISORY.STREAM.CREATED.*';

/** The stream_start of each running stream, one subject per stream, the last one kept. */
export const LIVE_STREAM = 'ARPGNET_LIVE';
export const liveSubject = (room: string, stream: string): string => `arpgnet.live.${roomToken(room)}.${stream}`;
export const liveSubjects = (room: string | null): string => (room === null ? 'arpgnet.live.>' : `arpgnet.live.${roomToken(room)}.*`);

/** Gateways say whether any subscriber of theirs asks for facial actions (analysers compute them only then). */
export const ACTIONS_DEMAND = 'arpgnet.actions.demand';

/** Analysers say they are alive, and how loaded, on this subject (the lease). */
export const ANALYSER_HEARTBEAT = 'arpgnet.analysers.heartbeat';
/** SFUs say they are alive; an analyser ends the streams of an SFU that went quiet. */
export const SFU_HEARTBEAT = 'arpgnet.sfu.heartbeat';
/** Requests to one analyser: start or stop analysing a stream. */
export const analyserControl = (analyser: string): string => `arpgnet.analyser.${analyser}.control`;
/** Requests to one SFU: a key frame for a stream. */
export const sfuControl = (sfu: string): string => `arpgnet.sfu.${sfu}.control`;
