import { describe, expect, it } from 'vitest';
import { api, person, screenshotOnFailure, text, withBrowser } from './browser';

withBrowser();

const WAIT = { timeout: 30_000, interval: 200 };

describe('admin dashboard in the browser', () => {
  it('shows live streams and platform metrics moving while listeners join', async () => {
    screenshotOnFailure('admin');
    const admin = await person('Ada', 'admin');
    await admin.page.goto('/admin');
    await expect.poll(text(admin.page, 'h1'), WAIT).toBe('Platform');
    // The charts read /api/admin/metrics again and again: their samples grow without a refresh.
    const samples = () =>
      admin.page
        .locator('[data-testid="chart-connections"] polyline')
        .getAttribute('points', { timeout: 1000 })
        .then((p) => (p ? p.trim().split(' ').length : 0))
        .catch(() => 0);
    await expect.poll(samples, WAIT).toBeGreaterThan(0);
    const firstSamples = await samples();

    const owner = await person('Otto', 'station_owner');
    const { station } = await api<{ station: { id: string } }>(owner, 'POST', '/api/stations', {
      name: 'Metro Beats',
    });
    await api(owner, 'POST', `/api/stations/${station.id}/live`, { showTitle: 'Rush hour' });
    const cell = `[data-testid="admin-listeners-${station.id}"]`;
    await expect
      .poll(text(admin.page, '[data-testid="admin-streams"]'), WAIT)
      .toContain('Metro Beats');
    await expect.poll(text(admin.page, cell), WAIT).toBe('0');

    const l1 = await person('Lia');
    const l2 = await person('Leo');
    await l1.page.goto(`/stations/${station.id}`);
    await expect.poll(text(admin.page, cell), WAIT).toBe('1');
    await l2.page.goto(`/stations/${station.id}`);
    await expect.poll(text(admin.page, cell), WAIT).toBe('2');
    // The platform's connection count counts the listeners' sockets (each hub report is up to
    // 5 s behind; other tests' sockets may close meanwhile, so only a floor is certain).
    await expect
      .poll(
        async () =>
          Number(
            await admin.page
              .locator('[data-testid="chart-connections"] .chart-value')
              .textContent(),
          ),
        { timeout: 30_000, interval: 200 },
      )
      .toBeGreaterThanOrEqual(4);
    expect(await samples()).toBeGreaterThan(firstSamples);
    await l2.page.close();
    await expect.poll(text(admin.page, cell), WAIT).toBe('1');
  });
});
