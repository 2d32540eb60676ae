// Station helpers (issue 11): the live poll, the track queue with now playing, and the owner's
// analytics feed, each kept from a station channel's welcome and frames. They take the welcome's
// snapshot as the truth at its `seq` and apply only events after it, so a resume (which replays
// what the snapshot already holds) never applies a change twice. docs/stations.md.
import type { AckFrame, WelcomeFrame } from '../../worker/protocol/core';
import type {
  NowPlaying,
  PollResult,
  PollState,
  QueueItem,
  SessionAnalytics,
  StreamServerFrame,
  StreamSnapshot,
} from '../../worker/protocol/stream';
import type { Channel } from './channel';
import type { WavecastClient } from './index';

type StationChannel = Channel<StreamServerFrame, StreamSnapshot>;

/** Tracks the welcome's position so events it already includes are skipped. */
class SnapshotFollower {
  #base = -1;

  constructor(
    protected readonly channel: StationChannel,
    onWelcome: (snapshot: StreamSnapshot) => void,
  ) {
    channel.on('welcome', (frame) => {
      const welcome = frame as unknown as WelcomeFrame<StreamSnapshot>;
      this.#base = welcome.seq;
      onWelcome(welcome.snapshot);
    });
  }

  /** True for a sequenced event newer than the last welcome's snapshot. */
  protected fresh(event: { seq: number }): boolean {
    return event.seq > this.#base;
  }
}

/** The station's open (or last) poll with live tallies, and this user's ballot. */
export class StationPoll extends SnapshotFollower {
  poll: PollState | null = null;
  ballot: number[] | null = null;
  readonly #changed = new Set<(poll: PollState | null) => void>();

  constructor(channel: StationChannel) {
    super(channel, (s) => {
      this.poll = s.poll;
      this.ballot = s.you.ballot;
      this.#emit();
    });
    channel.on('poll.opened', (e) => {
      if (!this.fresh(e)) return;
      this.poll = e.poll;
      this.ballot = null;
      this.#emit();
    });
    channel.on('poll.closed', (e) => {
      if (!this.fresh(e)) return;
      this.poll = e.poll;
      this.#emit();
    });
    channel.on('poll.tallies', (f) => {
      if (!this.poll || this.poll.id !== f.pollId || !this.poll.open) return;
      this.poll = { ...this.poll, tallies: f.tallies, votes: f.votes, voters: f.voters };
      this.#emit();
    });
    channel.on('poll.ballot', (f) => {
      if (this.poll?.id === f.pollId) this.ballot = f.choices;
    });
  }

  /** Called with the poll whenever it opens, changes or closes. */
  onChange(listener: (poll: PollState | null) => void): () => void {
    this.#changed.add(listener);
    return () => this.#changed.delete(listener);
  }

  /** Owner or admin: opens a poll (2–10 options). */
  open(input: {
    question: string;
    options: string[];
    multiple?: boolean;
    durationSeconds?: number;
  }): Promise<AckFrame<{ poll: PollState }>> {
    return this.channel.request({ type: 'poll.create', ...input });
  }

  /** Votes (option indexes); a later vote replaces this user's earlier one until the poll closes. */
  async vote(
    choices: number[],
    pollId = this.poll?.id,
  ): Promise<AckFrame<{ pollId: string; changed: boolean; choices: number[] }>> {
    if (!pollId) throw new Error('no poll to vote on');
    const ack = await this.channel.request<{ pollId: string; changed: boolean; choices: number[] }>(
      { type: 'poll.vote', pollId, choices },
    );
    if (ack.result && this.poll?.id === pollId) this.ballot = ack.result.choices;
    return ack;
  }

  /** Owner or admin: closes the poll now. */
  close(pollId = this.poll?.id): Promise<AckFrame<{ poll: PollState }>> {
    if (!pollId) throw new Error('no poll to close');
    return this.channel.request({ type: 'poll.close', pollId });
  }

  #emit(): void {
    for (const listener of this.#changed) listener(this.poll);
  }
}

/** The upcoming tracks and what plays now; "next" moves the head to now playing in one event. */
export class StationQueue extends SnapshotFollower {
  items: QueueItem[] = [];
  nowPlaying: NowPlaying | null = null;
  readonly #changed = new Set<(queue: StationQueue) => void>();

  constructor(channel: StationChannel) {
    super(channel, (s) => {
      this.items = [...s.queue];
      this.nowPlaying = s.nowPlaying;
      this.#emit();
    });
    channel.on('queue.added', (e) => {
      if (!this.fresh(e)) return;
      this.items.splice(e.position, 0, e.item);
      this.#emit();
    });
    channel.on('queue.removed', (e) => {
      if (!this.fresh(e)) return;
      this.items = this.items.filter((i) => i.id !== e.itemId);
      this.#emit();
    });
    channel.on('queue.moved', (e) => {
      if (!this.fresh(e)) return;
      const item = this.items.find((i) => i.id === e.itemId);
      this.items = this.items.filter((i) => i.id !== e.itemId);
      if (item) this.items.splice(e.position, 0, item);
      this.#emit();
    });
    channel.on('queue.cleared', (e) => {
      if (!this.fresh(e)) return;
      this.items = [];
      this.#emit();
    });
    channel.on('stream.metadata', (e) => {
      if (!this.fresh(e)) return;
      this.nowPlaying = e.nowPlaying;
      if (e.queueItemId) this.items = this.items.filter((i) => i.id !== e.queueItemId);
      this.#emit();
    });
    channel.on('stream.started', (e) => {
      if (!this.fresh(e)) return;
      this.nowPlaying = e.nowPlaying;
      this.#emit();
    });
    channel.on('stream.stopped', (e) => {
      if (!this.fresh(e)) return;
      this.nowPlaying = null;
      this.#emit();
    });
  }

  onChange(listener: (queue: StationQueue) => void): () => void {
    this.#changed.add(listener);
    return () => this.#changed.delete(listener);
  }

  add(track: {
    trackName: string;
    artistName?: string | null;
    trackId?: string | null;
    durationSeconds?: number | null;
    position?: number;
  }): Promise<AckFrame<{ item: QueueItem; position: number }>> {
    return this.channel.request({ type: 'queue.add', ...track });
  }

  remove(itemId: string): Promise<AckFrame<{ itemId: string }>> {
    return this.channel.request({ type: 'queue.remove', itemId });
  }

  move(itemId: string, position: number): Promise<AckFrame<{ itemId: string; position: number }>> {
    return this.channel.request({ type: 'queue.move', itemId, position });
  }

  clear(): Promise<AckFrame<{ removed: number }>> {
    return this.channel.request({ type: 'queue.clear' });
  }

  /** The head plays now. */
  next(): Promise<AckFrame<{ item: QueueItem; nowPlaying: NowPlaying; queue: number }>> {
    return this.channel.request({ type: 'queue.next' });
  }

  #emit(): void {
    for (const listener of this.#changed) listener(this);
  }
}

/** The owner's (or an admin's) live analytics: the latest frame, and any session over REST. */
export class StationAnalyticsFeed {
  latest: SessionAnalytics | null = null;

  constructor(
    private readonly client: WavecastClient,
    private readonly stationId: string,
    channel: StationChannel,
  ) {
    channel.on('analytics', (f) => {
      this.latest = f.analytics;
    });
  }

  /** Called with every live `analytics` frame (at most every few seconds while live). */
  static on(channel: StationChannel, listener: (analytics: SessionAnalytics) => void): () => void {
    return channel.on('analytics', (f) => listener(f.analytics));
  }

  /** Saved poll results of the station (or one session), newest first, and the open poll. */
  polls(sessionId?: string): Promise<{ current: PollState | null; polls: PollResult[] }> {
    const query = sessionId ? `?sessionId=${encodeURIComponent(sessionId)}` : '';
    return this.client.request(
      'GET',
      `/api/stations/${encodeURIComponent(this.stationId)}/polls${query}`,
    );
  }

  /** A session's full analytics, every minute included (live or ended). */
  session(sessionId: string): Promise<SessionAnalytics> {
    return this.client.request<SessionAnalytics>(
      'GET',
      `/api/stations/${encodeURIComponent(this.stationId)}/sessions/${encodeURIComponent(sessionId)}/analytics`,
    );
  }
}

/**
 * The three helpers on one station channel. Create them before the channel opens (right after
 * `client.station(id)`), so they see its first welcome.
 */
export function stationDesk(client: WavecastClient, stationId: string, channel: StationChannel) {
  return {
    poll: new StationPoll(channel),
    queue: new StationQueue(channel),
    analytics: new StationAnalyticsFeed(client, stationId, channel),
  };
}
