// axe-core on every page of the app, as each kind of person sees it, with content on it: no
// serious or critical violation. Also: at a phone's width nothing scrolls sideways and the menu
// opens from the keyboard.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { api, axe, person, screenshotOnFailure, visitor, withBrowser } from './browser';

withBrowser();

const WAIT = { timeout: 20_000, interval: 100 };

async function check(page: Page, path: string, ready: string): Promise<string[]> {
  await page.goto(path);
  await page.getByText(ready).first().waitFor({ timeout: 20_000 });
  return (await axe(page)).map((v) => `${path}: ${v}`);
}

describe('accessibility of every page', () => {
  it('has no serious or critical axe violations on any page', async () => {
    screenshotOnFailure('axe');
    const owner = await person('Owen', 'station_owner');
    const organiser = await person('Oona', 'organiser');
    const listener = await person('Lena');
    const admin = await person('Ada', 'admin');
    const { station } = await api<{ station: { id: string } }>(owner, 'POST', '/api/stations', {
      name: 'Axe FM',
      genre: 'Ambient',
    });
    await api(owner, 'POST', `/api/stations/${station.id}/live`, {
      showTitle: 'Checks',
      trackName: 'Contrast',
    });
    await api(listener, 'POST', `/api/stations/${station.id}/chat`, { body: 'first!' });
    await api(owner, 'POST', `/api/stations/${station.id}/queue`, { trackName: 'Queued one' });
    await api(owner, 'POST', `/api/stations/${station.id}/polls`, {
      question: 'Louder?',
      options: ['Yes', 'No'],
    });
    const { event } = await api<{ event: { id: string } }>(organiser, 'POST', '/api/events', {
      title: 'Axe Night',
      venue: 'Hall',
      startsAt: Date.now() + 86_400_000,
      capacity: 10,
    });
    await api(listener, 'POST', '/api/bookings', { eventId: event.id, quantity: 1 });
    const { story } = await api<{ story: { id: string } }>(listener, 'POST', '/api/stories', {
      title: 'Axe Tale',
      body: 'Once.',
      graph: {
        start: 'a',
        passages: [
          { id: 'a', text: 'Go?', choices: [{ id: 'y', label: 'Yes', to: 'b' }] },
          { id: 'b', text: 'Done.', choices: [] },
        ],
      },
    });
    await api(listener, 'POST', `/api/stories/${story.id}/publish`);
    await api(listener, 'POST', `/api/items/story-${story.id}/comments`, { body: 'Nice' });
    const { session } = await api<{ session: { id: string } }>(
      listener,
      'POST',
      `/api/stories/${story.id}/sessions`,
      {},
    );

    const anonymous = await visitor();
    const found: string[] = [];
    const pages: [Page, string, string][] = [
      [anonymous, '/', 'Live now'],
      [anonymous, '/signin', 'Sign in'],
      [anonymous, '/signup', 'Create your account'],
      [anonymous, '/events', 'Axe Night'],
      [anonymous, `/stations/${station.id}`, 'Contrast'],
      [anonymous, `/stories/${story.id}`, 'Axe Tale'],
      [anonymous, '/nowhere', 'Page not found'],
      [listener.page, '/', 'Axe FM'],
      [listener.page, `/stations/${station.id}`, 'Louder?'],
      [listener.page, `/events/${event.id}`, 'seats left'],
      [listener.page, '/tickets', 'Axe Night'],
      [listener.page, '/account', 'Your account'],
      [listener.page, '/stories', 'Write a story'],
      [listener.page, `/stories/${story.id}`, 'Story text'],
      [listener.page, `/play/${session.id}`, 'Waiting for the host'],
      [owner.page, '/studio', 'Create a station'],
      [owner.page, `/stations/${station.id}`, 'Stop broadcast'],
      [organiser.page, '/events/new', 'New event'],
      [organiser.page, `/events/${event.id}`, 'Edit event'],
      [admin.page, '/admin', 'Connections now'],
    ];
    for (const [page, path, ready] of pages) found.push(...(await check(page, path, ready)));
    // The notification bell, open (the listener's booking notified them).
    await listener.page.goto('/');
    await listener.page.getByRole('button', { name: /Notifications, \d+ unread/ }).click();
    await listener.page.getByRole('button', { name: 'Mark all read' }).waitFor();
    found.push(...(await axe(listener.page)).map((v) => `bell: ${v}`));
    expect(found).toEqual([]);

    // The check itself can fail: an image without a text alternative is a critical violation.
    await anonymous.evaluate(() =>
      document.querySelector('main')?.append(document.createElement('img')),
    );
    expect((await axe(anonymous)).join('\n')).toContain('image-alt');
  });

  it('fits a phone: nothing scrolls sideways and the menu works from the keyboard', async () => {
    screenshotOnFailure('phone');
    const owner = await person('Phil', 'station_owner');
    const page = owner.page;
    await page.setViewportSize({ width: 375, height: 740 });
    for (const path of ['/', '/events', '/stories', '/studio', '/account']) {
      await page.goto(path);
      await page.locator('h1').first().waitFor();
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - window.innerWidth,
      );
      expect(overflow, path).toBeLessThanOrEqual(0);
    }
    const nav = page.getByRole('navigation', { name: 'Main' });
    await expect.poll(() => nav.isVisible(), WAIT).toBe(false);
    await page.getByRole('button', { name: 'Menu' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => nav.isVisible(), WAIT).toBe(true);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL('**/events');
    await expect.poll(() => page.locator('h1').textContent(), WAIT).toBe('Events');
  });
});
