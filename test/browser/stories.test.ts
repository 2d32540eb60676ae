import { describe, expect, it } from 'vitest';
import { person, screenshotOnFailure, text, withBrowser } from './browser';

withBrowser();

const WAIT = { timeout: 20_000, interval: 100 };

describe('stories in the browser (seed 003)', () => {
  it('comments, typing and presence between two users, and a co-author edit with cursors', async () => {
    screenshotOnFailure('seed003-comments');
    const sam = await person('Sam');
    const kit = await person('Kit');

    // Sam writes a story, publishes it and adds Kit as a co-author.
    await sam.page.goto('/stories');
    await sam.page.getByLabel('Title').fill('The Lighthouse');
    await sam.page.getByLabel('Opening text').fill('It was a dark night.');
    await sam.page.getByRole('button', { name: 'Create story' }).click();
    await sam.page.waitForURL(/\/stories\/[^/]+$/);
    const storyPath = new URL(sam.page.url()).pathname;
    await sam.page.getByRole('button', { name: 'Publish' }).click();
    await expect.poll(text(sam.page, 'article .muted'), WAIT).toBe('Published');
    await sam.page.getByLabel('Add a co-author (user id)').fill(kit.id);
    await sam.page.getByRole('button', { name: 'Add' }).click();
    await expect.poll(text(sam.page, 'main'), WAIT).toContain('Co-authors: 1');

    await kit.page.goto(storyPath);
    // Who is here: both, on both pages.
    for (const p of [sam.page, kit.page]) {
      await expect.poll(text(p, '[data-testid="here"]'), WAIT).toMatch(/Sam/);
      await expect.poll(text(p, '[data-testid="here"]'), WAIT).toMatch(/Kit/);
    }

    // Kit types a comment: Sam sees "Kit is typing…", then the comment, and the typing ends.
    await kit.page.getByLabel('Comment', { exact: true }).fill('Love the opening');
    await expect.poll(text(sam.page, '[data-testid="typing"]'), WAIT).toBe('Kit is typing…');
    await kit.page.getByRole('button', { name: 'Post' }).click();
    await expect
      .poll(text(sam.page, '[data-testid="comments"]'), WAIT)
      .toContain('Love the opening');
    await expect.poll(text(sam.page, '[data-testid="typing"]'), WAIT).toBe('');
    await sam.page.getByLabel('Comment', { exact: true }).fill('Thanks!');
    await sam.page.getByLabel('Comment', { exact: true }).press('Enter');
    await expect
      .poll(() => kit.page.locator('[data-testid="comment"] .body').allTextContents(), WAIT)
      .toEqual(['Love the opening', 'Thanks!']);

    // The co-author edit: Kit appends a line; Sam's editor shows it and where Kit's cursor is.
    const kitEditor = kit.page.getByTestId('story-editor');
    await expect.poll(() => kitEditor.inputValue(), WAIT).toBe('It was a dark night.');
    await kitEditor.click();
    await kitEditor.press('End');
    await kitEditor.pressSequentially(' The lamp was out.');
    const samEditor = sam.page.getByTestId('story-editor');
    await expect
      .poll(() => samEditor.inputValue(), WAIT)
      .toBe('It was a dark night. The lamp was out.');
    await expect
      .poll(text(sam.page, '[data-testid="cursors"]'), WAIT)
      .toBe('Kit at line 1, column 39');

    // Kit leaves: Sam's page no longer lists Kit as here.
    await kit.page.goto('/');
    await expect.poll(text(sam.page, '[data-testid="here"]'), WAIT).not.toMatch(/Kit/);
  });

  it('a play session shows the passage, live votes and the countdown to every player', async () => {
    screenshotOnFailure('seed003-play');
    const host = await person('Hana');
    const player = await person('Pia');
    await host.page.goto('/stories');
    await host.page.getByLabel('Title').fill('The Tower');
    await host.page.getByLabel(/choose-your-path/).check();
    await host.page.getByRole('button', { name: 'Create story' }).click();
    await host.page.waitForURL(/\/stories\/[^/]+$/);
    await host.page.getByRole('button', { name: 'Publish' }).click();
    await host.page.getByRole('button', { name: 'Open a play session' }).click();
    await host.page.waitForURL(/\/play\/[^/]+$/);
    await expect.poll(text(host.page, 'main'), WAIT).toContain('Waiting for the host to start');

    await player.page.goto(new URL(host.page.url()).pathname);
    await expect.poll(text(player.page, 'main'), WAIT).toContain('Waiting for the host to start');
    await host.page.getByRole('button', { name: 'Start' }).click();
    for (const p of [host.page, player.page]) {
      await expect.poll(text(p, '[data-testid="passage"]'), WAIT).toContain('radio tower');
      await expect.poll(text(p, '[data-testid="countdown"]'), WAIT).toMatch(/\d+ s left to vote/);
    }
    await player.page.getByRole('button', { name: /Climb the stairs/ }).click();
    await expect.poll(text(host.page, '[data-testid="votes-stairs"]'), WAIT).toBe('1');
    await host.page.getByRole('button', { name: /Climb the stairs/ }).click();
    // Everyone voted: the story moves on for both.
    for (const p of [host.page, player.page]) {
      await expect.poll(text(p, '[data-testid="passage"]'), WAIT).toContain('The city hums');
      await expect.poll(text(p, '[data-testid="ended"]'), WAIT).toContain('The session has ended');
    }
  });
});
