import { sign } from 'hono/jwt';
import { describe, expect, it } from 'vitest';
import { api, connect, env, register, unique, upgrade } from './helpers';

const password = 'correct horse battery';

async function json(res: Response) {
  return (await res.json()) as Record<string, unknown> & {
    error?: { code: string; message: string; fields?: { path: string }[] };
  };
}

describe('accounts', () => {
  it('registers, logs in and answers /api/me with the same user', async () => {
    const email = `${unique('alice')}@example.test`;
    const reg = await api('/api/auth/register', {
      method: 'POST',
      json: { email, password, displayName: 'Alice', role: 'station_owner' },
    });
    expect(reg.status).toBe(201);
    const created = (await reg.json()) as { user: { id: string; role: string }; token: string };
    expect(created.user.role).toBe('station_owner');

    const login = await api('/api/auth/login', { method: 'POST', json: { email, password } });
    expect(login.status).toBe(200);
    const { token, expiresAt } = (await login.json()) as { token: string; expiresAt: number };
    expect(expiresAt).toBeGreaterThan(Date.now());

    const me = await api('/api/me', { token });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { user: { id: string; email: string } }).user).toMatchObject({
      id: created.user.id,
      email,
    });
  });

  it('stores a PBKDF2 hash, never the password', async () => {
    const user = await register();
    const row = await env.DB.prepare('SELECT password_hash FROM users WHERE id = ?')
      .bind(user.id)
      .first<{ password_hash: string }>();
    expect(row?.password_hash).toMatch(/^pbkdf2-sha256\$100000\$[^$]+\$[^$]+$/);
    expect(row?.password_hash).not.toContain(password);
  });

  it('refuses a duplicate e-mail with 409, whatever its case', async () => {
    const email = `${unique('dup')}@example.test`;
    const first = await api('/api/auth/register', {
      method: 'POST',
      json: { email, password, displayName: 'D' },
    });
    expect(first.status).toBe(201);
    const again = await api('/api/auth/register', {
      method: 'POST',
      json: { email: email.toUpperCase(), password, displayName: 'D2' },
    });
    expect(again.status).toBe(409);
    expect((await json(again)).error?.code).toBe('email_taken');
  });

  it('answers a wrong password and an unknown e-mail identically with 401', async () => {
    const user = await register();
    const wrongPassword = await api('/api/auth/login', {
      method: 'POST',
      json: { email: user.email, password: 'not the password' },
    });
    const unknownEmail = await api('/api/auth/login', {
      method: 'POST',
      json: { email: `${unique('nobody')}@example.test`, password },
    });
    expect(wrongPassword.status).toBe(401);
    expect(unknownEmail.status).toBe(401);
    expect(await json(wrongPassword)).toEqual(await json(unknownEmail));
  });

  it('never lets a user register as admin; ADMIN_EMAILS decides', async () => {
    const res = await api('/api/auth/register', {
      method: 'POST',
      json: { email: `${unique('x')}@example.test`, password, displayName: 'X', role: 'admin' },
    });
    expect(res.status).toBe(400);
    expect((await json(res)).error?.fields?.[0]?.path).toBe('role');
    const admin = await register('admin');
    expect(admin.role).toBe('admin');
  });

  it.each([
    ['a body that is not JSON', '{nope', 'invalid_json', undefined],
    ['a missing e-mail', JSON.stringify({ password, displayName: 'N' }), 'invalid_body', 'email'],
    [
      'a malformed e-mail',
      JSON.stringify({ email: 'not-an-email', password, displayName: 'N' }),
      'invalid_body',
      'email',
    ],
    [
      'a short password',
      JSON.stringify({ email: 'short@example.test', password: 'x', displayName: 'N' }),
      'invalid_body',
      'password',
    ],
    [
      'a wrongly typed name',
      JSON.stringify({ email: 'n@example.test', password, displayName: 42 }),
      'invalid_body',
      'displayName',
    ],
  ])('refuses %s with 400 naming the field', async (_, body, code, field) => {
    const res = await api('/api/auth/register', {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    const err = (await json(res)).error;
    expect(err?.code).toBe(code);
    if (field) {
      expect(err?.fields?.[0]?.path).toBe(field);
      expect(err?.message).toContain(field);
    }
  });
});

describe('tokens', () => {
  it('requires a token for /api/me', async () => {
    const res = await api('/api/me');
    expect(res.status).toBe(401);
    expect((await json(res)).error?.code).toBe('auth_required');
  });

  it('refuses a token signed with another secret, a garbage token and an expired token', async () => {
    const user = await register();
    const now = Math.floor(Date.now() / 1000);
    const forged = await sign(
      { sub: user.id, name: 'x', role: 'admin', exp: now + 60 },
      'another-secret-0123456789',
      'HS256',
    );
    const expired = await sign(
      { sub: user.id, name: 'x', role: 'listener', iat: now - 120, exp: now - 60 },
      env.JWT_SECRET,
      'HS256',
    );
    for (const token of [forged, expired, 'garbage.token.here']) {
      const res = await api('/api/me', { token });
      expect(res.status).toBe(401);
      expect((await json(res)).error?.code).toBe('invalid_token');
    }
  });

  it('refuses an Authorization header that is not a bearer token', async () => {
    const res = await api('/api/me', { headers: { authorization: 'Basic abc' } });
    expect(res.status).toBe(401);
    expect((await json(res)).error?.code).toBe('invalid_token');
  });

  it('never reaches a Durable Object with an invalid token', async () => {
    const itemId = unique('item');
    const res = await upgrade(`/ws/comments/${itemId}`, { token: 'garbage.token.here' });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_token');
    // The room for this item was never created.
    const { listDurableObjectIds } = await import('cloudflare:test');
    const ids = await listDurableObjectIds(env.COMMENT_ROOM);
    const target = env.COMMENT_ROOM.idFromName(`comments:${itemId}`);
    expect(ids.some((id) => id.equals(target))).toBe(false);
  });

  it('accepts the token from the Authorization header on a socket too', async () => {
    const user = await register();
    const socket = await connect(`/ws/comments/${unique('item')}`, {
      headers: { authorization: `Bearer ${user.token}` },
    });
    const welcome = await socket.next<{ user: { id: string } }>('welcome');
    expect(welcome.user.id).toBe(user.id);
    socket.close();
  });

  it('refuses sockets from an Origin outside the allowlist and accepts one inside it', async () => {
    const path = `/ws/comments/${unique('item')}`;
    const refused = await upgrade(path, { headers: { origin: 'https://evil.example' } });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      'origin_not_allowed',
    );
    const socket = await connect(path, { headers: { origin: 'https://app.example.test' } });
    await socket.next('welcome');
    socket.close();
  });

  it('answers a plain GET on a socket route with 426', async () => {
    const res = await api(`/ws/comments/${unique('item')}`);
    expect(res.status).toBe(426);
    expect((await json(res)).error?.code).toBe('upgrade_required');
  });
});

describe('errors', () => {
  it('answers unknown routes with a JSON 404 and no stack', async () => {
    const res = await api('/api/nope');
    expect(res.status).toBe(404);
    const body = await json(res);
    expect(body.error?.code).toBe('not_found');
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts/);
  });
});
