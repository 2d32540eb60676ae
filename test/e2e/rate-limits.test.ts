// The REST rate limits run on the Workers Rate Limiting binding; `wrangler dev` simulates it
// locally, so the limit holds against a real server too (docs/decisions.md).
import { describe, expect, it } from 'vitest';
import { baseUrl, register, unique } from './helpers';

describe('REST rate limits against wrangler dev', () => {
  it('refuses 30 back-to-back comment posts from one user before the 30th, with Retry-After', async () => {
    const user = await register();
    const itemId = unique('story');
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${baseUrl()}/api/items/${itemId}/comments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ body: `post ${i}` }),
      });
      statuses.push(res.status);
      if (res.status === 429) retryAfter ??= res.headers.get('retry-after');
      await res.arrayBuffer();
    }
    const firstRefusal = statuses.indexOf(429);
    expect(firstRefusal).toBeGreaterThanOrEqual(10);
    expect(firstRefusal).toBeLessThan(29);
    expect(statuses.slice(0, firstRefusal).every((s) => s === 201)).toBe(true);
    expect(Number(retryAfter)).toBeGreaterThan(0);
  });
});
