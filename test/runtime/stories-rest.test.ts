// Stories over REST: create, list, read, edit the record, co-authors, publish — and who may.
import { describe, expect, it } from 'vitest';
import type { StoryView } from '../../worker/protocol/stories';
import { api, register } from './helpers';
import { addCoauthor, createStory, fourChoiceGraph, publish } from './story-fixtures';

async function read(storyId: string, token?: string) {
  const res = await api(`/api/stories/${storyId}`, { token });
  return {
    status: res.status,
    body: (await res.json()) as { story: StoryView; error?: { code: string } },
  };
}

describe('stories over REST', () => {
  it('creates a draft that only its authors (and admins) can see', async () => {
    const [owner, other, admin] = await Promise.all([register(), register(), register('admin')]);
    const story = await createStory(owner, {
      title: 'Caves',
      body: 'Once',
      graph: fourChoiceGraph,
    });
    expect(story).toMatchObject({
      title: 'Caves',
      body: 'Once',
      published: false,
      ownerId: owner.id,
    });
    expect(story.graph?.passages).toHaveLength(6);
    expect((await read(story.id, owner.token)).status).toBe(200);
    expect((await read(story.id, admin.token)).status).toBe(200);
    const hidden = await read(story.id, other.token);
    expect(hidden.status).toBe(404);
    expect(hidden.body.error?.code).toBe('story_not_found');
    expect((await read(story.id)).status).toBe(404);
  });

  it('lists published stories for everyone and drafts only to their authors', async () => {
    const [owner, coauthor, reader] = await Promise.all([register(), register(), register()]);
    const draft = await createStory(owner, { title: 'Draft' });
    const shown = await createStory(owner, { title: 'Shown' });
    await addCoauthor(owner, draft.id, coauthor.id);
    await publish(owner, shown.id);
    const listed = (await (await api('/api/stories?limit=100')).json()) as { stories: StoryView[] };
    const ids = listed.stories.map((s) => s.id);
    expect(ids).toContain(shown.id);
    expect(ids).not.toContain(draft.id);
    const mine = (await (await api('/api/me/stories', { token: coauthor.token })).json()) as {
      stories: StoryView[];
    };
    expect(mine.stories.map((s) => s.id)).toEqual([draft.id]);
    expect((await read(draft.id, coauthor.token)).status).toBe(200);
    expect((await read(shown.id, reader.token)).status).toBe(200);
    expect((await read(shown.id)).status).toBe(200);
  });

  it('lets co-authors edit the title and graph, and nobody else', async () => {
    const [owner, coauthor, reader] = await Promise.all([register(), register(), register()]);
    const story = await createStory(owner);
    await addCoauthor(owner, story.id, coauthor.id);
    await publish(owner, story.id);
    const edit = (token: string, json: unknown) =>
      api(`/api/stories/${story.id}`, { method: 'PATCH', token, json });
    const ok = await edit(coauthor.token, { title: 'Renamed', graph: fourChoiceGraph });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { story: StoryView }).story.title).toBe('Renamed');
    expect((await edit(reader.token, { title: 'Mine now' })).status).toBe(403);
    const anonymous = await api(`/api/stories/${story.id}`, {
      method: 'PATCH',
      json: { title: 'x' },
    });
    expect(anonymous.status).toBe(401);
  });

  it('lets only the owner manage co-authors and publishing', async () => {
    const [owner, coauthor, third] = await Promise.all([register(), register(), register()]);
    const story = await createStory(owner);
    await addCoauthor(owner, story.id, coauthor.id);
    const byCoauthor = await api(`/api/stories/${story.id}/coauthors/${third.id}`, {
      method: 'PUT',
      token: coauthor.token,
    });
    expect(byCoauthor.status).toBe(403);
    expect(
      (await api(`/api/stories/${story.id}/publish`, { method: 'POST', token: coauthor.token }))
        .status,
    ).toBe(403);
    const unknown = await api(`/api/stories/${story.id}/coauthors/nobody-at-all`, {
      method: 'PUT',
      token: owner.token,
    });
    expect(unknown.status).toBe(404);
    const self = await api(`/api/stories/${story.id}/coauthors/${owner.id}`, {
      method: 'PUT',
      token: owner.token,
    });
    expect(self.status).toBe(409);
    // Adding twice is one co-author; removing takes the draft away from them.
    await addCoauthor(owner, story.id, coauthor.id);
    expect((await read(story.id, owner.token)).body.story.coauthorIds).toEqual([coauthor.id]);
    const removed = await api(`/api/stories/${story.id}/coauthors/${coauthor.id}`, {
      method: 'DELETE',
      token: owner.token,
    });
    expect(removed.status).toBe(200);
    expect((await read(story.id, coauthor.token)).status).toBe(404);
  });

  it('publishes and unpublishes', async () => {
    const [owner, reader] = await Promise.all([register(), register()]);
    const story = await createStory(owner);
    await publish(owner, story.id);
    const shown = await read(story.id, reader.token);
    expect(shown.body.story).toMatchObject({ published: true });
    expect(shown.body.story.publishedAt).toBeGreaterThan(0);
    const res = await api(`/api/stories/${story.id}/unpublish`, {
      method: 'POST',
      token: owner.token,
    });
    expect(res.status).toBe(200);
    expect((await read(story.id, reader.token)).status).toBe(404);
  });

  it('refuses bad records, naming the field', async () => {
    const owner = await register();
    const bad = async (json: unknown) => {
      const res = await api('/api/stories', { method: 'POST', token: owner.token, json });
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { fields: { path: string }[] } }).error.fields[0]
        ?.path;
    };
    expect(await bad({ title: '' })).toBe('title');
    expect(await bad({ title: 'x', extra: 1 })).toBe('(body)');
    const dangling = {
      start: 'a',
      passages: [{ id: 'a', text: '', choices: [{ id: 'c', label: 'go', to: 'zz' }] }],
    };
    expect(await bad({ title: 'x', graph: dangling })).toBe('graph.passages.0.choices.0.to');
    expect(
      await bad({ title: 'x', graph: { start: 'nope', passages: [{ id: 'a', text: '' }] } }),
    ).toBe('graph.start');
    const twice = {
      start: 'a',
      passages: [
        { id: 'a', text: '' },
        { id: 'a', text: '' },
      ],
    };
    expect(await bad({ title: 'x', graph: twice })).toBe('graph.passages.1.id');
    const anonymous = await api('/api/stories', { method: 'POST', json: { title: 'x' } });
    expect(anonymous.status).toBe(401);
  });
});
