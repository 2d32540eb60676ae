// State-changing API calls from a browser page on a site outside ALLOWED_ORIGINS are refused:
// CORS would only hide the answer from that page, not stop the write.
import { describe, expect, it } from 'vitest';
import { api, env, register, unique } from './helpers';

const FOREIGN = { origin: 'https://evil.example' };
// vitest.config.ts sets ALLOWED_ORIGINS to this one origin.
const OURS = { origin: 'https://app.example.test' };

const errorCode = async (res: Response) =>
  ((await res.json()) as { error: { code: string } }).error.code;

describe('Origin on writes', () => {
  it('refuses registration and login from a foreign page, and creates no account', async () => {
    const email = `${unique('csrf')}@example.test`;
    const registered = await api('/api/auth/register', {
      method: 'POST',
      headers: FOREIGN,
      json: { email, password: 'correct horse battery', displayName: 'Victim' },
    });
    expect(registered.status).toBe(403);
    expect(await errorCode(registered)).toBe('origin_not_allowed');
    const row = await env.DB.prepare('SELECT id FROM users WHERE email = ?').bind(email).first();
    expect(row).toBeNull();

    const user = await register();
    const login = await api('/api/auth/login', {
      method: 'POST',
      headers: FOREIGN,
      json: { email: user.email, password: 'correct horse battery' },
    });
    expect(login.status).toBe(403);
    expect(await errorCode(login)).toBe('origin_not_allowed');
  });

  it('refuses a signed-in write from a foreign page', async () => {
    const user = await register();
    const itemId = unique('item');
    const res = await api(`/api/items/${itemId}/comments`, {
      method: 'POST',
      token: user.token,
      headers: FOREIGN,
      json: { body: 'posted by another site' },
    });
    expect(res.status).toBe(403);
    expect(await errorCode(res)).toBe('origin_not_allowed');
    const page = (await (await api(`/api/items/${itemId}/comments`)).json()) as {
      comments: unknown[];
    };
    expect(page.comments).toHaveLength(0);
  });

  it('accepts writes from an allowed origin and from clients that send no Origin', async () => {
    const user = await register();
    const itemId = unique('item');
    for (const headers of [OURS, {}]) {
      const res = await api(`/api/items/${itemId}/comments`, {
        method: 'POST',
        token: user.token,
        headers,
        json: { body: 'hello' },
      });
      expect(res.status).toBe(201);
    }
  });

  it('still answers reads and CORS preflights from any origin', async () => {
    const read = await api('/api/stations', { headers: FOREIGN });
    expect(read.status).toBe(200);
    const preflight = await api('/api/stations', {
      method: 'OPTIONS',
      headers: { ...OURS, 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(OURS.origin);
  });
});
