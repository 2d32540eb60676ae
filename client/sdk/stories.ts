// Stories in the SDK: REST calls for the records and sessions, the live document provider and
// the play session helper. `new StoriesApi(client)` for the REST side. Its own entry
// (`@wavecast/sdk/stories`) so an app that edits no story does not ship Yjs.
import type {
  LiveDocument,
  PlaySessionInfo,
  PlaySessionRecord,
  StoryGraph,
  StoryView,
} from '../../worker/protocol/stories';
import type { WavecastClient } from './index';

export { PlaySession } from './play';
export { StoryDocument, type StoryDocumentOptions } from './story';

const path = (storyId: string) => `/api/stories/${encodeURIComponent(storyId)}`;

export class StoriesApi {
  constructor(private readonly client: WavecastClient) {}

  create(input: { title: string; body?: string; graph?: StoryGraph | null }) {
    return this.client.request<{ story: StoryView }>('POST', '/api/stories', input);
  }

  get(storyId: string) {
    return this.client.request<{ story: StoryView }>('GET', path(storyId));
  }

  /** Published stories, newest first. */
  list(page: { limit?: number; before?: string } = {}) {
    const query = new URLSearchParams();
    if (page.limit) query.set('limit', String(page.limit));
    if (page.before) query.set('before', page.before);
    const suffix = query.size ? `?${query}` : '';
    return this.client.request<{ stories: StoryView[]; nextCursor: string | null }>(
      'GET',
      `/api/stories${suffix}`,
    );
  }

  /** Stories I own or co-author, drafts included. */
  mine() {
    return this.client.request<{ stories: StoryView[] }>('GET', '/api/me/stories');
  }

  update(storyId: string, changes: { title?: string; graph?: StoryGraph | null }) {
    return this.client.request<{ story: StoryView }>('PATCH', path(storyId), changes);
  }

  addCoauthor(storyId: string, userId: string) {
    return this.client.request<{ story: StoryView }>(
      'PUT',
      `${path(storyId)}/coauthors/${encodeURIComponent(userId)}`,
    );
  }

  removeCoauthor(storyId: string, userId: string) {
    return this.client.request<{ story: StoryView }>(
      'DELETE',
      `${path(storyId)}/coauthors/${encodeURIComponent(userId)}`,
    );
  }

  publish(storyId: string) {
    return this.client.request<{ story: StoryView }>('POST', `${path(storyId)}/publish`);
  }

  unpublish(storyId: string) {
    return this.client.request<{ story: StoryView }>('POST', `${path(storyId)}/unpublish`);
  }

  /** The document as its channel holds it now (D1's body follows shortly after edits settle). */
  live(storyId: string) {
    return this.client.request<LiveDocument>('GET', `${path(storyId)}/live`);
  }

  openSession(storyId: string, options: { maxPlayers?: number; choiceSeconds?: number } = {}) {
    return this.client.request<{ session: PlaySessionInfo }>(
      'POST',
      `${path(storyId)}/sessions`,
      options,
    );
  }

  /** A session's record and, once it ended, its path. */
  session(sessionId: string) {
    return this.client.request<{ session: PlaySessionRecord }>(
      'GET',
      `/api/sessions/${encodeURIComponent(sessionId)}`,
    );
  }
}
