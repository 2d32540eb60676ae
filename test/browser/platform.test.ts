// Platform features in a real browser (issue 9): an admin's announcement appears on another
// person's open page as a banner and goes when withdrawn; online dots next to people in a chat
// follow whether they are connected.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { api, person, screenshotOnFailure, withBrowser } from './browser';

withBrowser();

const WAIT = { timeout: 20_000, interval: 100 };
const banner = (page: Page) => () => page.locator('[data-testid="announcement"]').allTextContents();

describe('announcements and online dots in the browser (issue 9)', () => {
  it('shows an announcement on open pages live and removes it when withdrawn', async () => {
    screenshotOnFailure('announcement');
    const admin = await person('Ada', 'admin');
    const reader = await person('Rita');
    await reader.page.goto('/events');
    await admin.page.goto('/admin');
    const message = `Maintenance tonight ${Date.now()}`;
    await admin.page.getByLabel('Message').fill(message);
    await admin.page.getByLabel('Level').selectOption('warning');
    await admin.page.getByRole('button', { name: 'Announce' }).click();
    await expect.poll(banner(reader.page), WAIT).toContainEqual(expect.stringContaining(message));
    await admin.page
      .getByRole('listitem')
      .filter({ hasText: message })
      .getByRole('button', { name: 'Withdraw' })
      .click();
    await expect
      .poll(banner(reader.page), WAIT)
      .not.toContainEqual(expect.stringContaining(message));
  });

  it('shows who in the chat is online, and the dot follows them leaving', async () => {
    screenshotOnFailure('online-dots');
    const owner = await person('Omar', 'station_owner');
    const fan = await person('Flo');
    const { station } = await api<{ station: { id: string } }>(owner, 'POST', '/api/stations', {
      name: 'Dot Radio',
    });
    await api(owner, 'POST', `/api/stations/${station.id}/live`, { showTitle: 'Dots' });
    await api(fan, 'POST', `/api/stations/${station.id}/chat`, { body: 'hi from Flo' });
    await fan.page.goto(`/stations/${station.id}`);
    await owner.page.goto(`/stations/${station.id}`);
    const dot = owner.page
      .locator('[data-testid="chat-message"]', { hasText: 'hi from Flo' })
      .getByTestId('online-dot');
    await expect.poll(() => dot.getAttribute('data-online'), WAIT).toBe('true');
    await fan.context.close();
    await expect
      .poll(() => dot.getAttribute('data-online'), { timeout: 40_000, interval: 200 })
      .toBe('false');
  });
});
