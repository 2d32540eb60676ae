// HS256 tokens for the baseline servers, with the claims Wavecast's own tokens carry (sub, name,
// role, iat, exp). The seeds' servers authenticate with JWTs too; the bench signs them itself, as
// the baselines have no accounts of their own (registration is not what they measure).
import { createHmac, timingSafeEqual } from 'node:crypto';

const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function signToken({ id, name, role }, secret, ttlSeconds = 3600) {
  const now = Math.floor(Date.now() / 1000);
  const head = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({
    sub: id,
    name,
    role,
    iat: now,
    exp: now + ttlSeconds,
  })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** The user a token names, or null when it is malformed, badly signed or expired. */
export function verifyToken(token, secret) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const expected = createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
    if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number') return null;
    if (claims.exp * 1000 <= Date.now()) return null;
    return { id: claims.sub, name: String(claims.name ?? ''), role: String(claims.role ?? '') };
  } catch {
    return null;
  }
}
