import { describe, expect, it } from 'vitest';
import { api, person, screenshotOnFailure, text, withBrowser } from './browser';

withBrowser();

const WAIT = { timeout: 20_000, interval: 100 };

describe('stations in the browser (seed 000)', () => {
  it('owner goes live, listeners see it, counts and tracks move without a refresh', async () => {
    screenshotOnFailure('seed000');
    const owner = await person('Olivia', 'station_owner');
    const ann = await person('Ann');
    const ben = await person('Ben');

    // The owner creates a station in the studio.
    await owner.page.goto('/studio');
    await owner.page.getByLabel('Name').fill('Harbour FM');
    await owner.page.getByLabel('Genre').fill('Jazz');
    await owner.page.getByRole('button', { name: 'Create station' }).click();
    await owner.page.waitForURL(/\/stations\//);
    const stationPath = new URL(owner.page.url()).pathname;
    const card = `[data-testid="station-${stationPath.split('/').pop()}"]`;
    await expect.poll(text(owner.page, 'h1'), WAIT).toBe('Harbour FM');

    // Listeners keep their dashboards open: the station is not live yet (other stations may be).
    for (const p of [ann.page, ben.page]) {
      await p.goto('/');
      await expect.poll(text(p, 'h2'), WAIT).not.toBeNull();
      await expect.poll(text(p, '[data-testid="connection"]'), WAIT).toBe('Online');
      expect(await p.locator(card).count()).toBe(0);
    }

    // Test 1 and 2: the owner goes live; both dashboards show the station with LIVE, and a toast.
    await owner.page.getByLabel('Show title').fill('Morning Tide');
    await owner.page.getByLabel('First track').fill('Blue in Green');
    await owner.page.getByLabel('Artist', { exact: true }).fill('Miles Davis');
    await owner.page.getByRole('button', { name: 'Go Live' }).click();
    await expect.poll(text(owner.page, '.station-status'), WAIT).toContain('LIVE');
    for (const p of [ann.page, ben.page]) {
      await expect.poll(text(p, `${card} h2`), WAIT).toBe('Harbour FM');
      await expect.poll(text(p, `${card} [data-testid="live-badge"]`), WAIT).toBe('LIVE');
      await expect
        .poll(text(p, `${card} [data-testid="now-playing"]`), WAIT)
        .toBe('Blue in Green — Miles Davis');
      await expect
        .poll(() =>
          p.locator('[data-testid="toast"]', { hasText: 'Harbour FM is live now' }).count(),
        )
        .toBe(1);
    }
    // Only the owner is tuned in.
    await expect.poll(text(ben.page, `${card} [data-testid="listener-count"]`), WAIT).toBe('1');

    // Test 2: Ann joins from her dashboard; Ben's dashboard and the owner's page count her.
    await ann.page.getByRole('link', { name: 'Harbour FM', exact: true }).click();
    await ann.page.waitForURL(`**${stationPath}`);
    await expect.poll(text(ann.page, '[data-testid="listener-count"]'), WAIT).toBe('2');
    await expect.poll(text(ben.page, `${card} [data-testid="listener-count"]`), WAIT).toBe('2');
    await expect.poll(text(owner.page, '[data-testid="listener-count"]'), WAIT).toBe('2');

    // Test 3: the owner changes the track; Ann's page and Ben's dashboard show it, no reload.
    await owner.page.getByLabel('Track', { exact: true }).fill('So What');
    await owner.page.getByLabel('Artist', { exact: true }).fill('Miles Davis');
    await owner.page.getByRole('button', { name: 'Update now playing' }).click();
    await expect
      .poll(text(ann.page, '[data-testid="now-playing"]'), WAIT)
      .toBe('So What — Miles Davis');
    await expect
      .poll(text(ben.page, `${card} [data-testid="now-playing"]`), WAIT)
      .toBe('So What — Miles Davis');

    // Test 4: tabs of different users open and close; the count follows.
    const cleo = await person('Cleo');
    const dan = await person('Dan');
    await cleo.page.goto(stationPath);
    await dan.page.goto(stationPath);
    await expect.poll(text(ann.page, '[data-testid="listener-count"]'), WAIT).toBe('4');
    await expect.poll(text(ben.page, `${card} [data-testid="listener-count"]`), WAIT).toBe('4');
    // A second tab of the same user is still one listener.
    const cleo2 = await cleo.newTab();
    await cleo2.goto(stationPath);
    await expect.poll(text(cleo2, '[data-testid="listener-count"]'), WAIT).toBe('4');
    await cleo2.close();
    await cleo.page.close();
    await expect.poll(text(ann.page, '[data-testid="listener-count"]'), WAIT).toBe('3');
    await dan.page.close();
    await expect.poll(text(ann.page, '[data-testid="listener-count"]'), WAIT).toBe('2');
    await expect.poll(text(ben.page, `${card} [data-testid="listener-count"]`), WAIT).toBe('2');

    // The owner stops: Ben's dashboard drops the station, Ann's page shows it off air.
    await owner.page.getByRole('button', { name: 'Stop broadcast' }).click();
    await expect.poll(() => ben.page.locator(card).count(), WAIT).toBe(0);
    await expect.poll(text(ben.page, 'main'), WAIT).toContain('Harbour FM');
    await expect.poll(text(ann.page, '.station-status'), WAIT).toContain('Off air');
  });

  it('the show desk: the owner queues tracks and plays the next, opens a poll; a listener sees both live and votes; the owner sees the tally and live analytics', async () => {
    screenshotOnFailure('station-desk');
    const owner = await person('Desmond', 'station_owner');
    const fan = await person('Fay');
    const { station } = await api<{ station: { id: string } }>(owner, 'POST', '/api/stations', {
      name: 'Desk Radio',
    });
    await api(owner, 'POST', `/api/stations/${station.id}/live`, { showTitle: 'Request hour' });
    await owner.page.goto(`/stations/${station.id}`);
    await fan.page.goto(`/stations/${station.id}`);
    await expect.poll(text(fan.page, '[data-testid="listener-count"]'), WAIT).toBe('2');

    // The queue: two tracks in, the first played next; the listener follows without a refresh.
    for (const [track, artist] of [
      ['Take Five', 'Dave Brubeck'],
      ['Naima', 'John Coltrane'],
    ]) {
      await owner.page.getByLabel('Queue a track').fill(track ?? '');
      await owner.page.getByLabel('Its artist').fill(artist ?? '');
      await owner.page.getByRole('button', { name: 'Add to queue' }).click();
      await expect.poll(text(fan.page, '[data-testid="queue"]'), WAIT).toContain(track ?? '');
    }
    await owner.page.getByRole('button', { name: 'Play next' }).click();
    await expect
      .poll(text(fan.page, '[data-testid="now-playing"]'), WAIT)
      .toBe('Take Five — Dave Brubeck');
    await expect.poll(text(fan.page, '[data-testid="queue"]'), WAIT).toBe('Naima — John Coltrane');

    // A poll: the listener votes, the owner sees the tally move; closing shows on both.
    await owner.page.getByLabel('Question').fill('Next set?');
    await owner.page.getByLabel(/Options/).fill('Bebop\nModal');
    await owner.page.getByRole('button', { name: 'Open poll' }).click();
    await expect.poll(text(fan.page, '[data-testid="poll"]'), WAIT).toContain('Next set?');
    await fan.page.getByRole('button', { name: /^Modal/ }).click();
    await expect.poll(text(owner.page, '[data-testid="poll-votes-1"]'), WAIT).toBe('1');
    await expect.poll(text(owner.page, '[data-testid="poll-voters"]'), WAIT).toBe('1');
    await owner.page.getByRole('button', { name: 'Close poll' }).click();
    await expect.poll(text(fan.page, '[data-testid="poll"]'), WAIT).toContain('Closed');

    // The owner's live analytics count both listeners; the listener sees no analytics.
    await expect
      .poll(text(owner.page, '[data-testid="analytics-current"]'), {
        timeout: 30_000,
        interval: 200,
      })
      .toBe('2');
    expect(await fan.page.getByRole('region', { name: 'Live analytics' }).count()).toBe(0);
  });
});
