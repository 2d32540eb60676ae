// The user channel in a real browser (issue 8): the bell's unread count in two tabs of one user
// (reading in one clears it in the other), a toast for a new notification, the balance, and
// "Log out everywhere" reaching the other tab and another device.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { api, device, person, screenshotOnFailure, text, withBrowser } from './browser';

withBrowser();

const WAIT = { timeout: 20_000, interval: 100 };
const unread = (page: Page) => text(page, '[data-testid="unread"]');

describe('notifications in the browser (issue 8)', () => {
  it('the bell is the same in two tabs, reading in one clears the other, and log out everywhere signs out every tab and device', async () => {
    screenshotOnFailure('bell');
    const organiser = await person('Odile', 'organiser');
    const nia = await person('Nia');
    const admin = await person('Ada', 'admin');
    const { event } = await api<{ event: { id: string } }>(organiser, 'POST', '/api/events', {
      title: 'Bell Night',
      venue: 'Hall',
      startsAt: Date.now() + 86_400_000,
      capacity: 10,
    });
    const tab1 = nia.page;
    const tab2 = await nia.newTab();
    for (const tab of [tab1, tab2]) {
      await tab.goto('/');
      await expect.poll(unread(tab), WAIT).toBe('0');
      // Every channel of the page is connected (the user channel included) before anything happens.
      await expect.poll(text(tab, '[data-testid="connection"]'), WAIT).toBe('Online');
    }

    // A booking is confirmed: both tabs' bells count it, with a toast (watched in both tabs at
    // once: a toast goes by itself after a few seconds).
    await api(nia, 'POST', '/api/bookings', { eventId: event.id, quantity: 1 });
    await Promise.all(
      [tab1, tab2].map(async (tab) => {
        await expect
          .poll(() => tab.locator('[data-testid="toast"]').allTextContents(), WAIT)
          .toContainEqual(expect.stringMatching(/Bell Night|[Bb]ooking/));
        await expect.poll(unread(tab), WAIT).toBe('1');
      }),
    );

    // Reading all in tab 2 clears tab 1.
    await tab2.getByRole('button', { name: /Notifications, 1 unread/ }).click();
    await expect
      .poll(text(tab2, '[data-testid="notifications"]'), WAIT)
      .toMatch(/Bell Night|ooking/);
    await tab2.getByRole('button', { name: 'Mark all read' }).click();
    await expect.poll(unread(tab2), WAIT).toBe('0');
    await expect.poll(unread(tab1), WAIT).toBe('0');

    // Another one, read by opening it in tab 1: tab 2 follows.
    await api(nia, 'POST', '/api/bookings', { eventId: event.id, quantity: 2 });
    await expect.poll(unread(tab2), WAIT).toBe('1');
    await tab1.getByRole('button', { name: /Notifications, 1 unread/ }).click();
    await tab1.locator('[data-testid="notifications"] li.unread button').first().click();
    await expect.poll(unread(tab1), WAIT).toBe('0');
    await expect.poll(unread(tab2), WAIT).toBe('0');

    // The balance a backend carries shows in both tabs.
    await api(admin, 'POST', `/api/admin/users/${nia.id}/balance`, {
      amount: '12.50',
      currency: 'EUR',
      version: 1,
    });
    for (const tab of [tab1, tab2]) {
      await expect.poll(text(tab, '[data-testid="balance"]'), WAIT).toBe('12.50 EUR');
    }

    // Log out everywhere from tab 1: tab 2 and another device are signed out too.
    const phone = await device(nia);
    await phone.goto('/');
    await expect.poll(text(phone, '[data-testid="signed-in-as"]'), WAIT).toBe('Nia');
    await tab1.goto('/account');
    await tab1.getByRole('button', { name: 'Log out everywhere' }).click();
    for (const page of [tab1, tab2, phone]) {
      await expect.poll(() => page.getByRole('link', { name: 'Sign in' }).count(), WAIT).toBe(1);
      expect(await page.locator('[data-testid="signed-in-as"]').count()).toBe(0);
    }
    await expect.poll(text(phone, '[data-testid="toast"]'), WAIT).toContain('signed out');
  });
});
