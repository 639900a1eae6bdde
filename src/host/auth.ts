import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errors, jwtVerify, SignJWT, type JWTHeaderParameters } from 'jose';
import { CLOSE } from '../publish/close-codes.js';

/**
 * Room tokens: JWTs scoped to one room and one identity, carrying grants; HS256 with a
 * shared secret, or EdDSA (Ed25519) where the server holds only the public key and
 * tokens are minted elsewhere.
 * A token travels only inside a WebSocket message (the join request, or the first
 * message on /events), never in a URL that a proxy or access log keeps.
 */
export const GRANTS = ['join', 'publish', 'subscribe', 'analyse', 'kiosk'] as const;
export type Grant = (typeof GRANTS)[number];
/** What the `kiosk` grant stands for. */
const KIOSK: readonly Grant[] = ['join', 'publish', 'analyse', 'subscribe'];

export interface RoomClaims {
  room: string;
  identity: string;
  grants: Grant[];
  /** Seconds since the epoch. */
  exp: number;
}

export { CLOSE };
/** Why a token or origin was refused: each has its close code in CLOSE. */
export type RefusalReason = 'unauthenticated' | 'expired' | 'missingGrant' | 'wrongRoom' | 'badOrigin';

export class AuthError extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
  }
  get code(): number {
    return CLOSE[this.reason];
  }
}

const ISSUER = 'arpgnet-edge';

export interface AuthKeys {
  secret?: string | undefined;
  /** PEM files of an Ed25519 key pair: the public one checks tokens, the private one signs them. */
  publicKeyFile?: string | undefined;
  privateKeyFile?: string | undefined;
}

const pem = (file: string, what: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`auth.${what}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
};

export class Authenticator {
  private readonly key: Uint8Array | null;
  private readonly publicKey: KeyObject | null;
  private readonly privateKey: KeyObject | null;
  /** Refusals per reason, for /metrics. */
  readonly refusals: Record<RefusalReason, number> = { unauthenticated: 0, expired: 0, missingGrant: 0, wrongRoom: 0, badOrigin: 0 };

  constructor(
    keys: string | AuthKeys | undefined,
    readonly required: boolean,
  ) {
    const k: AuthKeys = typeof keys === 'string' ? { secret: keys } : (keys ?? {});
    const secret = k.secret;
    if (secret !== undefined && secret.length < 32) throw new Error('auth.secret must be at least 32 characters');
    this.key = secret ? new TextEncoder().encode(secret) : null;
    this.publicKey = k.publicKeyFile ? createPublicKey(pem(k.publicKeyFile, 'publicKeyFile')) : null;
    this.privateKey = k.privateKeyFile ? createPrivateKey(pem(k.privateKeyFile, 'privateKeyFile')) : null;
    for (const [key, what] of [
      [this.publicKey, 'publicKeyFile'],
      [this.privateKey, 'privateKeyFile'],
    ] as const) {
      if (key && key.asymmetricKeyType !== 'ed25519')
        throw new Error(`auth.${what}: an Ed25519 key is needed, not ${key.asymmetricKeyType}`);
    }
    if (required && !this.key && !this.publicKey)
      throw new Error(
        'auth is required (a non-loopback listen address) but no key is set: set ARPGNET_AUTH_SECRET, auth.secret or auth.publicKeyFile',
      );
  }

  async sign(c: { room: string; identity: string; grants: readonly Grant[]; ttlSeconds: number }): Promise<string> {
    const eddsa = this.privateKey !== null;
    if (!eddsa && !this.key) throw new Error('no signing key: set ARPGNET_AUTH_SECRET, auth.secret or auth.privateKeyFile');
    return new SignJWT({ room: c.room, grants: [...c.grants] })
      .setProtectedHeader({ alg: eddsa ? 'EdDSA' : 'HS256' })
      .setIssuer(ISSUER)
      .setSubject(c.identity)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + c.ttlSeconds)
      .sign(this.privateKey ?? this.key!);
  }

  /** The token's claims if it admits `grant` in `room`; null when auth is off; AuthError otherwise. */
  async check(token: unknown, room: string | null, grant: Grant): Promise<RoomClaims | null> {
    if (!this.required) return null;
    try {
      return await this.verify(token, room, grant);
    } catch (e) {
      if (e instanceof AuthError) this.refusals[e.reason]++;
      throw e;
    }
  }

  private async verify(token: unknown, room: string | null, grant: Grant): Promise<RoomClaims> {
    if (typeof token !== 'string' || !token) throw new AuthError('unauthenticated', 'a room token is required');
    // the token's algorithm picks the key; an algorithm we hold no key for is refused
    const keyFor = (h: JWTHeaderParameters): Uint8Array | KeyObject => {
      if (h.alg === 'HS256' && this.key) return this.key;
      if (h.alg === 'EdDSA' && this.publicKey) return this.publicKey;
      throw new AuthError('unauthenticated', `tokens signed with ${h.alg} are not accepted here`);
    };
    let payload;
    try {
      ({ payload } = await jwtVerify(token, keyFor, { issuer: ISSUER, algorithms: ['HS256', 'EdDSA'] }));
    } catch (e) {
      if (e instanceof AuthError) throw e;
      if (e instanceof errors.JWTExpired) throw new AuthError('expired', 'the room token has expired');
      throw new AuthError('unauthenticated', 'the room token is not valid');
    }
    const listed = Array.isArray(payload['grants']) ? payload['grants'].filter((g): g is Grant => GRANTS.includes(g as Grant)) : [];
    // a kiosk is one box that shows its own camera's analysis: one grant for all it needs
    const grants: Grant[] = listed.includes('kiosk') ? [...new Set<Grant>([...listed, ...KIOSK])] : listed;
    const claims: RoomClaims = { room: String(payload['room'] ?? ''), identity: payload.sub ?? '', grants, exp: payload.exp ?? 0 };
    if (room !== null && claims.room !== room) throw new AuthError('wrongRoom', `the token is for room ${claims.room}, not ${room}`);
    if (!claims.grants.includes(grant)) throw new AuthError('missingGrant', `the token does not grant '${grant}'`);
    return claims;
  }

  /** Whether a WebSocket upgrade's Origin may connect: no Origin (not a browser), the page's own origin, or a listed one. */
  originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
    if (!origin) return true;
    if (allowed.includes(origin) || allowed.includes('*')) return true;
    try {
      return new URL(origin).host === host;
    } catch {
      return false;
    }
  }
}

/** Auth is on unless the server only listens on loopback (and nobody asked for it). */
export function authRequired(mode: 'auto' | 'on' | 'off', host: string): boolean {
  if (mode !== 'auto') return mode === 'on';
  return !['127.0.0.1', '::1', 'localhost'].includes(host);
}
