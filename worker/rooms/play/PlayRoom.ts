// A multiplayer session of a published story: every player sees the same passage; at each choice
// they vote, tallies go out live, and when everyone present has voted or the deadline (an alarm
// task) passes, the winning choice moves everyone on together. The path is written to D1 when
// the session ends. docs/stories.md ("Play sessions").
import { ChannelError } from '../../channel/errors';
import {
  type Call,
  ChannelRoom,
  type Connection,
  type Handled,
  type Handlers,
  type Tx,
} from '../../channel/room';
import { type SessionOpened, sessionEndWrites, sessionOpenWrites } from '../../db/stories';
import { ErrorCode, type PublicUser } from '../../protocol/core';
import {
  type ChosenEvent,
  type DecisionReason,
  type EndedEvent,
  type EndReason,
  MAX_PLAY_STEPS,
  type Passage,
  type PassageEvent,
  type PlaySessionInfo,
  type PlaySnapshot,
  type playFrames,
  StoryErrorCode,
  type StoryGraph,
  type VotesEvent,
} from '../../protocol/stories';
import { isHost, play } from './kind';
import { PlayState, playPassage, winner } from './state';

const DEADLINE_TASK = 'deadline';

type Unsequenced<T> = Omit<T, 'seq'>;

export class PlayRoom extends ChannelRoom<typeof playFrames, PlaySnapshot> {
  readonly #state: PlayState;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, play);
    this.#state = new PlayState(this.sql, this.log);
    this.kit.outbox.register('play.open', sessionOpenWrites);
    this.kit.outbox.register('play.end', sessionEndWrites);
    this.kit.task(DEADLINE_TASK, () => this.#deadlinePassed());
  }

  /**
   * Seats are taken here, before the socket is accepted, so two players racing for the last
   * seat cannot both get it. A player who already has a seat always gets back in.
   */
  protected override mustExist(): void {
    if (!this.#state.session) {
      throw new ChannelError(StoryErrorCode.sessionNotFound, 'no such session', 404);
    }
  }

  protected override authorize(user: PublicUser | null): void {
    const session = this.#state.session;
    if (!session) throw new ChannelError(StoryErrorCode.sessionNotFound, 'no such session', 404);
    if (!user || session.info.status === 'ended' || this.#state.hasSeat(user.id)) return;
    if (this.#state.seats() >= session.info.maxPlayers) {
      throw new ChannelError(
        StoryErrorCode.sessionFull,
        `this session is full (${session.info.maxPlayers} players)`,
        409,
      );
    }
    this.kit.transaction(() => this.#state.takeSeat(user));
  }

  protected snapshot(conn: Connection): PlaySnapshot {
    const { info } = this.#session();
    const round = this.#state.round;
    const passage = round ? this.#state.passage(round.passageId) : null;
    const myVote = round && conn.userId ? this.#state.votes(round.step).get(conn.userId) : null;
    return {
      session: info,
      step: round?.step ?? null,
      passage: passage ? playPassage(passage) : null,
      tallies: round && passage ? this.#state.tallies(round.step, passage) : {},
      deadline: round?.deadline ?? null,
      myVote: myVote ?? null,
      seats: this.#state.seats(),
      presence: this.presenceSnapshot(),
    };
  }

  protected readonly handlers: Handlers<typeof playFrames> = {
    'play.start': (call) => this.#start(call),
    'play.vote': (call, frame) => this.#vote(call, frame.choiceId),
    'play.end': (call) => {
      const { info } = this.#session();
      if (!isHost(info, call.user)) throw notHost();
      if (info.status === 'ended') throw notPlaying('the session has ended');
      return this.commit(call, (tx) => {
        const event = this.#end(tx, 'host_ended');
        return { seq: event.seq, result: { ended: true } };
      });
    },
  };

  /** A rolled-back commit leaves no stale state behind in memory. */
  protected override commit<T extends Handled>(call: Call | null, apply: (tx: Tx) => T): T {
    try {
      return super.commit(call, apply);
    } catch (err) {
      this.#state.reload();
      throw err;
    }
  }

  protected override onLeave(_conn: Connection, lastOfUser: boolean): void {
    // One fewer to wait for: the ones still here may all have voted.
    if (lastOfUser) this.#decideIfAllVoted();
  }

  // ---- RPC for the routes ------------------------------------------------------------

  /** Opens the session (the route checked the story is published); a repeat changes nothing. */
  open(input: { info: PlaySessionInfo; graph: StoryGraph }) {
    return this.rpc(() => {
      const existing = this.#state.session;
      if (existing) return existing.info;
      const { info } = input;
      this.commit(null, (tx) => {
        this.#state.setSession(input);
        // The host's seat is kept from the start: a full session can still be started.
        this.#state.takeSeat(info.host);
        const opened: SessionOpened = {
          id: info.id,
          storyId: info.storyId,
          hostId: info.host.id,
          maxPlayers: info.maxPlayers,
          choiceSeconds: info.choiceSeconds,
          createdAt: info.createdAt,
        };
        tx.outbox('play.open', opened);
        return {};
      });
      return info;
    });
  }

  // ---- behaviour ---------------------------------------------------------------------

  #start(call: Call): Handled {
    const session = this.#session();
    if (!isHost(session.info, call.user)) throw notHost();
    if (session.info.status !== 'lobby') {
      throw new ChannelError(StoryErrorCode.alreadyStarted, 'the session has already started', 409);
    }
    const handled = this.commit(call, (tx) => {
      this.#setStatus('playing');
      const event = this.#enter(tx, this.#state.passage(session.graph.start), 0);
      return { seq: event.seq, result: { step: 0 } };
    });
    this.#armDeadline();
    return handled;
  }

  #vote(call: Call, choiceId: string): Handled {
    const { info } = this.#session();
    const round = this.#state.round;
    if (info.status !== 'playing' || !round || round.deadline === null) {
      throw notPlaying('there is no vote open');
    }
    if (!this.#state.hasSeat(call.user.id)) {
      throw new ChannelError(ErrorCode.forbidden, 'only players may vote', 403);
    }
    const passage = this.#state.passage(round.passageId);
    if (!passage.choices.some((c) => c.id === choiceId)) {
      throw new ChannelError(StoryErrorCode.invalidChoice, 'no such choice in this passage', 400);
    }
    const handled = this.commit(call, (tx) => {
      this.#state.vote(round.step, call.user.id, choiceId);
      const voters = this.#state.votes(round.step);
      const event = tx.publish<Unsequenced<VotesEvent>>({
        type: 'play.votes',
        step: round.step,
        tallies: this.#state.tallies(round.step, passage),
        voted: voters.size,
        players: this.#presentPlayers().size,
      });
      return { seq: event.seq, result: { step: round.step, choiceId } };
    });
    this.#decideIfAllVoted();
    return handled;
  }

  #decideIfAllVoted(): void {
    const round = this.#state.round;
    if (this.#state.session?.info.status !== 'playing' || !round || round.deadline === null) return;
    const present = this.#presentPlayers();
    const voters = this.#state.votes(round.step);
    if (present.size === 0 || ![...present].every((id) => voters.has(id))) return;
    this.#decide('all_voted');
  }

  async #deadlinePassed(): Promise<void> {
    const round = this.#state.round;
    if (this.#state.session?.info.status !== 'playing' || !round || round.deadline === null) return;
    // A task from an earlier round, or an alarm a little early: aim at this round's deadline.
    if (round.deadline > Date.now()) return this.schedule(DEADLINE_TASK, round.deadline);
    this.#decide('deadline');
  }

  /** Closes the current vote: the winner's passage becomes everyone's next one. */
  #decide(reason: DecisionReason): void {
    const round = this.#state.round;
    if (!round) return;
    const passage = this.#state.passage(round.passageId);
    this.commit(null, (tx) => {
      const tallies = this.#state.tallies(round.step, passage);
      const choiceId = winner(passage, tallies);
      this.#state.record(round.step, passage.id, choiceId, tallies, reason);
      tx.publish<Unsequenced<ChosenEvent>>({
        type: 'play.chosen',
        step: round.step,
        choiceId,
        tallies,
        reason,
      });
      const to = passage.choices.find((c) => c.id === choiceId)?.to ?? passage.id;
      const next = round.step + 1;
      if (next >= MAX_PLAY_STEPS) this.#end(tx, 'step_limit');
      else this.#enter(tx, this.#state.passage(to), next);
      return {};
    });
    this.#armDeadline();
  }

  /** Shows a passage to everyone; one without choices ends the session. */
  #enter(tx: Tx, passage: Passage, step: number) {
    const ending = passage.choices.length === 0;
    const { info } = this.#session();
    const deadline = ending ? null : Date.now() + info.choiceSeconds * 1000;
    this.#state.setRound({ step, passageId: passage.id, deadline });
    const event = tx.publish<Unsequenced<PassageEvent>>({
      type: 'play.passage',
      step,
      passage: playPassage(passage),
      deadline,
    });
    if (ending) this.#end(tx, 'ending');
    return event;
  }

  #end(tx: Tx, reason: EndReason) {
    const round = this.#state.round;
    if (round) {
      // The passage the session stopped on closes its path, with no choice made there.
      const passage = this.#state.passage(round.passageId);
      this.#state.record(
        round.step,
        passage.id,
        null,
        this.#state.tallies(round.step, passage),
        null,
      );
      this.#state.setRound({ ...round, deadline: null });
    }
    this.#setStatus('ended');
    const path = this.#state.path();
    const endedAt = Date.now();
    tx.outbox('play.end', { id: this.channelId, endedAt, endReason: reason, path });
    return tx.publish<Unsequenced<EndedEvent>>({ type: 'play.ended', reason, steps: path.length });
  }

  #armDeadline(): void {
    const deadline = this.#state.round?.deadline;
    if (!deadline || this.#state.session?.info.status !== 'playing') return;
    this.ctx.waitUntil(
      this.schedule(DEADLINE_TASK, deadline).catch((err: unknown) => {
        console.error(`${this.kit.label}: scheduling the deadline failed`, err);
      }),
    );
  }

  #setStatus(status: PlaySessionInfo['status']): void {
    const session = this.#session();
    this.#state.setSession({ ...session, info: { ...session.info, status } });
  }

  /** Players with an open socket right now. */
  #presentPlayers(): Set<string> {
    const present = new Set<string>();
    for (const conn of this.connections()) {
      if (conn.userId && this.#state.hasSeat(conn.userId)) present.add(conn.userId);
    }
    return present;
  }

  #session(): { info: PlaySessionInfo; graph: StoryGraph } {
    const session = this.#state.session;
    if (!session) throw new ChannelError(StoryErrorCode.sessionNotFound, 'no such session', 404);
    return session;
  }
}

function notHost(): ChannelError {
  return new ChannelError(StoryErrorCode.notHost, 'only the host may do that', 403);
}

function notPlaying(message: string): ChannelError {
  return new ChannelError(StoryErrorCode.notPlaying, message, 409);
}
