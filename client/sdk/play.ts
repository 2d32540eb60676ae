// A multiplayer play session over its Wavecast channel: the current passage, live tallies and
// the deadline, kept from the welcome and the session's events (resuming like every channel),
// and the passages seen so far in order. docs/stories.md ("Play sessions").
import type { AckFrame, WelcomeFrame } from '../../worker/protocol/core';
import type {
  ChosenEvent,
  EndedEvent,
  PassageEvent,
  PlayPassage,
  PlayServerFrame,
  PlaySessionInfo,
  PlaySnapshot,
  VotesEvent,
} from '../../worker/protocol/stories';
import type { Channel, ChannelOptions } from './channel';
import type { WavecastClient } from './index';

export class PlaySession {
  readonly channel: Channel<PlayServerFrame, PlaySnapshot>;
  info: PlaySessionInfo | null = null;
  step: number | null = null;
  passage: PlayPassage | null = null;
  tallies: Record<string, number> = {};
  deadline: number | null = null;
  myVote: string | null = null;
  ended: EndedEvent | null = null;
  /** Every passage shown, by step: the path as this player saw it. */
  readonly seen = new Map<number, PlayPassage>();
  /** The decisions, by step. */
  readonly chosen = new Map<number, ChosenEvent>();

  constructor(
    client: WavecastClient,
    readonly sessionId: string,
    options: Partial<ChannelOptions> = {},
  ) {
    this.channel = client.channel<PlayServerFrame, PlaySnapshot>(
      `/ws/play/${encodeURIComponent(sessionId)}`,
      options,
    );
    this.channel.on('welcome', (w) => this.#welcome(w as unknown as WelcomeFrame<PlaySnapshot>));
    this.channel.on('play.passage', (e) => this.#passage(e));
    this.channel.on('play.votes', (e) => this.#votes(e));
    this.channel.on('play.chosen', (e) => {
      this.chosen.set(e.step, e);
      this.tallies = e.tallies;
    });
    this.channel.on('play.ended', (e) => {
      this.ended = e;
      this.deadline = null;
    });
  }

  /** Listens to the session's events (`play.passage`, `play.votes`, `play.chosen`, `play.ended`). */
  on<T extends PlayServerFrame['type'] | 'welcome'>(
    type: T,
    listener: (frame: Extract<PlayServerFrame, { type: T }>) => void,
  ): () => void {
    return this.channel.on(type, listener as never);
  }

  /** The passages seen so far, in step order. */
  get path(): PlayPassage[] {
    return [...this.seen.entries()].sort(([a], [b]) => a - b).map(([, p]) => p);
  }

  /** Host only: shows everyone the opening passage. */
  start(): Promise<AckFrame> {
    return this.channel.request({ type: 'play.start' });
  }

  /** Votes for a choice of the current passage (a later vote replaces an earlier one). */
  async vote(choiceId: string): Promise<AckFrame> {
    const ack = await this.channel.request({ type: 'play.vote', choiceId });
    this.myVote = choiceId;
    return ack;
  }

  /** Host only: ends the session where it stands. */
  end(): Promise<AckFrame> {
    return this.channel.request({ type: 'play.end' });
  }

  close(): void {
    this.channel.close();
  }

  #welcome(welcome: WelcomeFrame<PlaySnapshot>): void {
    const s = welcome.snapshot;
    this.info = s.session;
    this.step = s.step;
    this.passage = s.passage;
    this.tallies = s.tallies;
    this.deadline = s.deadline;
    this.myVote = s.myVote;
    if (s.step !== null && s.passage) this.seen.set(s.step, s.passage);
  }

  #passage(e: PassageEvent): void {
    this.step = e.step;
    this.passage = e.passage;
    this.deadline = e.deadline;
    this.myVote = null;
    this.tallies = Object.fromEntries(e.passage.choices.map((c) => [c.id, 0]));
    this.seen.set(e.step, e.passage);
  }

  #votes(e: VotesEvent): void {
    if (e.step === this.step) this.tallies = e.tallies;
  }
}
