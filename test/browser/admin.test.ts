// The admin dashboard in a real browser: live streams with their listener counts and the
// platform's connection chart move while listeners join, without a refresh.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { api, person, screenshotOnFailure, withBrowser } from './browser';

withBrowser();

const WAIT = { timeout: 30_000, interval: 200 };
const text = (page: Page, selector: string) => () =>
  page
    .locator(selector)
    .first()
    .textContent({ timeout: 1000 })
    .catch(() => null);

describe('admin dashboard in the browser', () => {
  it('shows live streams and platform metrics moving while listeners join', async () => {
    screenshotOnFailure('admin');
    const admin = await person('Ada', 'admin');
    await admin.page.goto('/admin');
    await expect.poll(text(admin.page, 'h1'), WAIT).toBe('Platform');
    await expect
      .poll(text(admin.page, '[data-testid="chart-connections"] .chart-value'), WAIT)
      .toMatch(/^\d+$/);
    const before = Number(
      await admin.page.locator('[data-testid="chart-connections"] .chart-value').textContent(),
    );

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
    // Four more sockets than at the start (two listeners and their lobbies) reach the chart.
    await expect
      .poll(
        async () =>
          Number(
            await admin.page
              .locator('[data-testid="chart-connections"] .chart-value')
              .textContent(),
          ),
        WAIT,
      )
      .toBeGreaterThanOrEqual(before + 4);
    await l2.page.close();
    await expect.poll(text(admin.page, cell), WAIT).toBe('1');
  });
});
