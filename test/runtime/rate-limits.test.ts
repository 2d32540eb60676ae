// REST rate limits (docs/protocol.md, "Limits"): every write per user, comment and chat posts
// per user at a tighter pace, registration and login per client address, login per e-mail.
// The limiter counts in fixed windows, so a run may straddle two: the tests send enough to
// cross any two windows and check that nothing is refused before the first window is full.
import { describe, expect, it } from 'vitest';
import { api, register, unique } from './helpers';
import { createStation } from './station-fixtures';

const WRITES_PER_MINUTE = 120;
const MESSAGES_PER_10S = 10;
const REGISTRATIONS_PER_MINUTE = 300;
const LOGINS_PER_MINUTE = 20;

interface Refusal {
  /** How many requests passed before the first 429. */
  passed: number;
  res: Response;
}

/** Sends up to `max` requests one after another until one is refused with 429. */
async function untilRefused(max: number, send: (i: number) => Promise<Response>) {
  for (let i = 0; i < max; i++) {
    const res = await send(i);
    if (res.status === 429) return { passed: i, res } satisfies Refusal;
    await res.body?.cancel();
  }
  throw new Error(`none of ${max} requests was refused`);
}

async function expectRateLimited({ res }: Refusal) {
  expect(res.status).toBe(429);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  const { error } = (await res.json()) as { error: { code: string } };
  expect(error.code).toBe('rate_limited');
}

describe('per-user limits on writes', () => {
  it('refuses 30 back-to-back comment posts before the 30th', async () => {
    const user = await register();
    const itemId = unique('item');
    const refusal = await untilRefused(30, (i) =>
      api(`/api/items/${itemId}/comments`, {
        method: 'POST',
        token: user.token,
        json: { body: `post ${i}` },
      }),
    );
    expect(refusal.passed).toBeGreaterThanOrEqual(MESSAGES_PER_10S);
    expect(refusal.passed).toBeLessThan(29);
    await expectRateLimited(refusal);
    // Another user is not affected.
    const other = await register();
    const res = await api(`/api/items/${itemId}/comments`, {
      method: 'POST',
      token: other.token,
      json: { body: 'mine' },
    });
    expect(res.status).toBe(201);
  });

  it('limits chat posts over REST the same way', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const listener = await register();
    // The room's own chat pace (5 at once, then one every 2 s) refuses with 429 first; the
    // REST limit counts those attempts too and refuses with Retry-After once it is spent.
    let refusal: Refusal | undefined;
    for (let i = 0; i < 2 * MESSAGES_PER_10S + 1 && !refusal; i++) {
      const res = await api(`/api/stations/${station.id}/chat`, {
        method: 'POST',
        token: listener.token,
        json: { body: `hi ${i}` },
      });
      if (res.headers.has('retry-after')) refusal = { passed: i, res };
      else await res.body?.cancel();
    }
    expect(refusal?.passed).toBeGreaterThanOrEqual(MESSAGES_PER_10S);
    if (refusal) await expectRateLimited(refusal);
  });

  it('refuses a signed-in user past the write limit on any write route', async () => {
    const owner = await register('station_owner');
    const station = await createStation(owner);
    const fan = await register();
    const refusal = await untilRefused(2 * WRITES_PER_MINUTE + 1, (i) =>
      api(`/api/stations/${station.id}/favourite`, {
        method: i % 2 === 0 ? 'PUT' : 'DELETE',
        token: fan.token,
      }),
    );
    expect(refusal.passed).toBeGreaterThanOrEqual(WRITES_PER_MINUTE);
    await expectRateLimited(refusal);
    // Reads are not writes.
    expect((await api(`/api/stations/${station.id}`, { token: fan.token })).status).toBe(200);
  });
});

describe('per-address limits on accounts', () => {
  it('refuses registrations from one address past the limit, and not from another', async () => {
    const address = { 'cf-connecting-ip': '198.51.100.7' };
    // Bodies that fail validation still count: the limit is checked first, so this is cheap.
    const refusal = await untilRefused(2 * REGISTRATIONS_PER_MINUTE + 1, () =>
      api('/api/auth/register', { method: 'POST', headers: address, json: {} }),
    );
    expect(refusal.passed).toBeGreaterThanOrEqual(REGISTRATIONS_PER_MINUTE);
    await expectRateLimited(refusal);
    const elsewhere = await api('/api/auth/register', {
      method: 'POST',
      headers: { 'cf-connecting-ip': '198.51.100.8' },
      json: {},
    });
    expect(elsewhere.status).toBe(400);
  });

  it('refuses login attempts from one address past the limit', async () => {
    const address = { 'cf-connecting-ip': '198.51.100.9' };
    const refusal = await untilRefused(2 * LOGINS_PER_MINUTE + 1, () =>
      api('/api/auth/login', { method: 'POST', headers: address, json: {} }),
    );
    expect(refusal.passed).toBeGreaterThanOrEqual(LOGINS_PER_MINUTE);
    await expectRateLimited(refusal);
  });

  it('refuses password guesses at one account from many addresses', async () => {
    const user = await register();
    const refusal = await untilRefused(2 * LOGINS_PER_MINUTE + 1, (i) =>
      api('/api/auth/login', {
        method: 'POST',
        headers: { 'cf-connecting-ip': `203.0.113.${i + 1}` },
        json: { email: user.email, password: `guess number ${i}` },
      }),
    );
    expect(refusal.passed).toBeGreaterThanOrEqual(LOGINS_PER_MINUTE);
    await expectRateLimited(refusal);
  });
});
