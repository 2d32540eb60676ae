// Seed 001's live-stream chat between two viewers in a real browser, with one viewer's
// connection dropped in between: messages sent while offline wait (shown as sending), go out
// once on reconnect, and nobody sees a message twice; the connection indicator says what happens.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { api, person, screenshotOnFailure, text, withBrowser } from './browser';

withBrowser();

const WAIT = { timeout: 20_000, interval: 100 };
const messages = (page: Page) => () =>
  page.locator('[data-testid="chat-message"] .body').allTextContents();

describe('chat in the browser (seed 001)', () => {
  it('two viewers chat, one drops and comes back, and every message shows once', async () => {
    screenshotOnFailure('seed001');
    const owner = await person('Host', 'station_owner');
    const { station } = await api<{ station: { id: string } }>(owner, 'POST', '/api/stations', {
      name: 'Night Shift',
    });
    await api(owner, 'POST', `/api/stations/${station.id}/live`, { showTitle: 'Late talk' });
    const amy = await person('Amy');
    const bob = await person('Bob');
    for (const p of [amy.page, bob.page]) {
      await p.goto(`/stations/${station.id}`);
      await expect.poll(text(p, '[data-testid="connection"]'), WAIT).toBe('Online');
    }

    // Amy writes; both see it once, and Amy's optimistic copy is replaced by the real one.
    await amy.page.getByLabel('Message').fill('hello from Amy');
    await amy.page.getByLabel('Message').press('Enter');
    await expect.poll(messages(bob.page), WAIT).toEqual(['hello from Amy']);
    await expect.poll(messages(amy.page), WAIT).toEqual(['hello from Amy']);
    await expect.poll(() => amy.page.locator('[data-testid="chat-pending"]').count(), WAIT).toBe(0);

    // Bob's connection drops: his indicator says so; he writes while offline.
    await bob.context.setOffline(true);
    await expect
      .poll(text(bob.page, '[data-testid="connection"]'), WAIT)
      .toMatch(/Offline|Reconnecting/);
    await bob.page.getByLabel('Message').fill('typed while offline');
    await bob.page.getByLabel('Message').press('Enter');
    await expect
      .poll(text(bob.page, '[data-testid="chat-pending"]'), WAIT)
      .toContain('typed while offline');
    // Amy keeps talking meanwhile.
    await amy.page.getByLabel('Message').fill('are you there, Bob?');
    await amy.page.getByLabel('Message').press('Enter');
    await expect.poll(messages(amy.page), WAIT).toEqual(['hello from Amy', 'are you there, Bob?']);

    // Bob comes back: he catches up on what he missed, his message goes out once.
    await bob.context.setOffline(false);
    await expect.poll(text(bob.page, '[data-testid="connection"]'), WAIT).toBe('Online');
    const all = ['hello from Amy', 'are you there, Bob?', 'typed while offline'];
    await expect.poll(messages(bob.page), WAIT).toEqual(all);
    await expect.poll(messages(amy.page), WAIT).toEqual(all);
    await expect.poll(() => bob.page.locator('[data-testid="chat-pending"]').count(), WAIT).toBe(0);

    // A reply after the reconnect still shows once on each side.
    await bob.page.getByLabel('Message').fill('back now');
    await bob.page.getByLabel('Message').press('Enter');
    await expect.poll(messages(amy.page), WAIT).toEqual([...all, 'back now']);
    await expect.poll(messages(bob.page), WAIT).toEqual([...all, 'back now']);
  });
});
