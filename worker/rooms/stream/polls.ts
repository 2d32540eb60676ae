// Live polls of a station (issue 11): one open poll at a time, ballots per signed-in user (not
// per tab) that may change until the poll closes, tallies kept with the ballots in the DO's
// SQLite. Opening and closing are sequenced events; ballots are not (a thousand votes would
// push everything else out of the resume window), so tallies travel in coalesced frames and
// in the welcome. A closed poll's result goes to D1 through the outbox. docs/stations.md.
import { ChannelError } from '../../channel/errors';
import type { ChannelKit, Tx } from '../../channel/room';
import { pollResultWrites } from '../../db/engagement';
import { ErrorCode } from '../../protocol/core';
import type {
  PollCloseReason,
  PollCreate,
  PollParticipation,
  PollResult,
  PollState,
  PollTallies,
} from '../../protocol/stream-extras';

type PollRow = {
  id: string;
  session_id: string;
  question: string;
  options: string;
  multiple: number;
  opened_by: string;
  opened_at: number;
  closes_at: number;
  closed_at: number | null;
  close_reason: string | null;
  tallies: string;
  votes: number;
  voters: number;
};

export class PollBook {
  // The newest poll (open or the last closed), read once per wake and written through.
  #latest: PollState | null | undefined;

  constructor(
    private readonly kit: ChannelKit,
    private readonly stationId: string,
  ) {
    kit.sql.exec(`CREATE TABLE IF NOT EXISTS stream_polls (
      id TEXT PRIMARY KEY, session_id TEXT NOT NULL, question TEXT NOT NULL, options TEXT NOT NULL,
      multiple INTEGER NOT NULL, opened_by TEXT NOT NULL, opened_at INTEGER NOT NULL,
      closes_at INTEGER NOT NULL, closed_at INTEGER, close_reason TEXT, tallies TEXT NOT NULL,
      votes INTEGER NOT NULL, voters INTEGER NOT NULL)`);
    kit.sql.exec(`CREATE TABLE IF NOT EXISTS stream_poll_ballots (
      poll_id TEXT NOT NULL, user_id TEXT NOT NULL, choices TEXT NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (poll_id, user_id))`);
    kit.sql.exec(`CREATE TABLE IF NOT EXISTS stream_poll_eligible (
      poll_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (poll_id, user_id))`);
    kit.outbox.register('poll.result', pollResultWrites);
  }

  /** The open poll, or the last one; null before any. */
  get latest(): PollState | null {
    if (this.#latest === undefined) {
      const row = this.kit.sql
        .exec<PollRow>('SELECT * FROM stream_polls ORDER BY opened_at DESC, rowid DESC LIMIT 1')
        .toArray()[0];
      this.#latest = row ? stateOf(this.stationId, row) : null;
    }
    return this.#latest;
  }

  /** Re-reads from storage (after a rolled-back commit). */
  reload(): void {
    this.#latest = undefined;
  }

  /** The open poll, if any. */
  get open(): PollState | null {
    const latest = this.latest;
    return latest?.open ? latest : null;
  }

  /** Opens a poll in the live session; `users` are the signed-in users here now (eligible). */
  create(
    tx: Tx,
    sessionId: string,
    openedBy: string,
    req: PollCreate,
    users: Iterable<string>,
    now = Date.now(),
  ): PollState {
    if (this.open) {
      throw new ChannelError(
        ErrorCode.pollAlreadyOpen,
        'a poll is already open on this station: close it first',
        409,
      );
    }
    const poll: PollState = {
      id: crypto.randomUUID(),
      stationId: this.stationId,
      sessionId,
      question: req.question,
      options: req.options,
      multiple: req.multiple,
      openedBy,
      openedAt: now,
      closesAt: now + req.durationSeconds * 1000,
      closedAt: null,
      closeReason: null,
      open: true,
      tallies: req.options.map(() => 0),
      votes: 0,
      voters: 0,
    };
    this.kit.sql.exec(
      `INSERT INTO stream_polls (id, session_id, question, options, multiple, opened_by, opened_at,
         closes_at, tallies, votes, voters) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)`,
      poll.id,
      sessionId,
      poll.question,
      JSON.stringify(poll.options),
      poll.multiple ? 1 : 0,
      openedBy,
      now,
      poll.closesAt,
      JSON.stringify(poll.tallies),
    );
    for (const userId of new Set(users)) this.noteEligible(userId, poll.id);
    this.#latest = poll;
    tx.publish({ type: 'poll.opened', poll });
    return poll;
  }

  /**
   * Records a user's ballot (replacing an earlier one). Checks every rule and throws a stable
   * code before anything changes. `changed` is false when the ballot was already this one.
   */
  vote(
    userId: string,
    pollId: string,
    choices: number[],
    now = Date.now(),
  ): { changed: boolean; choices: number[] } {
    const poll = this.#find(pollId);
    if (!poll.open || now >= poll.closesAt) {
      throw new ChannelError(ErrorCode.pollClosed, 'this poll is closed', 409);
    }
    for (const c of choices) {
      if (c < 0 || c >= poll.options.length) {
        throw new ChannelError(
          ErrorCode.unknownOption,
          `no option ${c}: choose from 0 to ${poll.options.length - 1}`,
          422,
        );
      }
    }
    if (new Set(choices).size !== choices.length) {
      throw new ChannelError(ErrorCode.duplicateChoice, 'each option may be chosen once', 422);
    }
    if (!poll.multiple && choices.length > 1) {
      throw new ChannelError(
        ErrorCode.tooManyChoices,
        'this poll takes one choice per voter (a new ballot replaces your earlier one)',
        422,
      );
    }
    const sorted = [...choices].sort((a, b) => a - b);
    const before = this.ballotOf(userId, poll.id);
    if (before && JSON.stringify(before) === JSON.stringify(sorted)) {
      return { changed: false, choices: sorted };
    }
    for (const c of before ?? []) poll.tallies[c] = (poll.tallies[c] ?? 1) - 1;
    for (const c of sorted) poll.tallies[c] = (poll.tallies[c] ?? 0) + 1;
    poll.votes += sorted.length - (before?.length ?? 0);
    if (!before) poll.voters += 1;
    this.kit.sql.exec(
      `INSERT INTO stream_poll_ballots (poll_id, user_id, choices, at) VALUES (?, ?, ?, ?)
       ON CONFLICT (poll_id, user_id) DO UPDATE SET choices = excluded.choices, at = excluded.at`,
      poll.id,
      userId,
      JSON.stringify(sorted),
      now,
    );
    this.kit.sql.exec(
      'UPDATE stream_polls SET tallies = ?, votes = ?, voters = ? WHERE id = ?',
      JSON.stringify(poll.tallies),
      poll.votes,
      poll.voters,
      poll.id,
    );
    this.noteEligible(userId, poll.id);
    return { changed: true, choices: sorted };
  }

  /** Closes the poll: a sequenced `poll.closed` with the exact result, and its row for D1. */
  close(tx: Tx, pollId: string, reason: PollCloseReason, now = Date.now()): PollState {
    const poll = this.#find(pollId);
    if (!poll.open)
      throw new ChannelError(ErrorCode.pollClosed, 'this poll is already closed', 409);
    poll.open = false;
    poll.closedAt = now;
    poll.closeReason = reason;
    this.kit.sql.exec(
      'UPDATE stream_polls SET closed_at = ?, close_reason = ? WHERE id = ?',
      now,
      reason,
      poll.id,
    );
    const result: PollResult = { ...poll, eligible: this.#eligible(poll.id) };
    tx.outbox('poll.result', result);
    tx.publish({ type: 'poll.closed', poll });
    return poll;
  }

  /** A signed-in user who is on the channel while the poll is open could vote. */
  noteEligible(userId: string, pollId = this.open?.id): void {
    if (!pollId) return;
    this.kit.sql.exec(
      'INSERT OR IGNORE INTO stream_poll_eligible (poll_id, user_id) VALUES (?, ?)',
      pollId,
      userId,
    );
  }

  ballotOf(userId: string, pollId = this.latest?.id): number[] | null {
    if (!pollId) return null;
    const row = this.kit.sql
      .exec<{ choices: string }>(
        'SELECT choices FROM stream_poll_ballots WHERE poll_id = ? AND user_id = ?',
        pollId,
        userId,
      )
      .toArray()[0];
    return row ? (JSON.parse(row.choices) as number[]) : null;
  }

  tallies(): (PollTallies & { pollId: string }) | null {
    const poll = this.latest;
    if (!poll) return null;
    return { pollId: poll.id, tallies: poll.tallies, votes: poll.votes, voters: poll.voters };
  }

  /** Every poll of a session with how many of those who could vote did. */
  participation(sessionId: string): PollParticipation[] {
    return this.kit.sql
      .exec<PollRow>(
        'SELECT * FROM stream_polls WHERE session_id = ? ORDER BY opened_at',
        sessionId,
      )
      .toArray()
      .map((row) => {
        const poll = stateOf(this.stationId, row);
        return participationOf({ ...poll, eligible: this.#eligible(poll.id) });
      });
  }

  /** Forgets the ballots of polls from other sessions (the results are in D1). */
  forgetBefore(sessionId: string): void {
    const keep = 'SELECT id FROM stream_polls WHERE session_id = ?';
    this.kit.sql.exec(`DELETE FROM stream_poll_ballots WHERE poll_id NOT IN (${keep})`, sessionId);
    this.kit.sql.exec(`DELETE FROM stream_poll_eligible WHERE poll_id NOT IN (${keep})`, sessionId);
    this.kit.sql.exec(
      'DELETE FROM stream_polls WHERE session_id != ? AND closed_at IS NOT NULL AND id != ?',
      sessionId,
      this.latest?.id ?? '',
    );
  }

  #find(pollId: string): PollState {
    const latest = this.latest;
    if (latest && latest.id === pollId) return latest;
    const exists = this.kit.sql
      .exec<{ n: number }>('SELECT COUNT(*) AS n FROM stream_polls WHERE id = ?', pollId)
      .one().n;
    if (exists > 0) throw new ChannelError(ErrorCode.pollClosed, 'this poll is closed', 409);
    throw new ChannelError(ErrorCode.pollNotFound, 'no such poll on this station', 404);
  }

  #eligible(pollId: string): number {
    return this.kit.sql
      .exec<{ n: number }>(
        'SELECT COUNT(*) AS n FROM stream_poll_eligible WHERE poll_id = ?',
        pollId,
      )
      .one().n;
  }
}

export function participationOf(p: PollResult): PollParticipation {
  return {
    pollId: p.id,
    question: p.question,
    open: p.open,
    voters: p.voters,
    votes: p.votes,
    eligible: p.eligible,
    participation: p.eligible > 0 ? Math.min(1, p.voters / p.eligible) : 0,
  };
}

function stateOf(stationId: string, row: PollRow): PollState {
  return {
    id: row.id,
    stationId,
    sessionId: row.session_id,
    question: row.question,
    options: JSON.parse(row.options) as string[],
    multiple: row.multiple === 1,
    openedBy: row.opened_by,
    openedAt: row.opened_at,
    closesAt: row.closes_at,
    closedAt: row.closed_at,
    closeReason: row.close_reason as PollCloseReason | null,
    open: row.closed_at === null,
    tallies: JSON.parse(row.tallies) as number[],
    votes: row.votes,
    voters: row.voters,
  };
}
