// A play session's state in the object's SQLite: the session and the story graph it plays (copied
// at opening, so later edits of the story do not change a running game), the seats, the current
// round with its deadline, the votes, and the path so far.
import type { SequenceLog } from '../../channel/log';
import type { PublicUser } from '../../protocol/core';
import type {
  DecisionReason,
  Passage,
  PlayPassage,
  PlaySessionInfo,
  PlayStep,
  StoryGraph,
} from '../../protocol/stories';

export interface Round {
  step: number;
  passageId: string;
  deadline: number | null;
}

export class PlayState {
  #session: { info: PlaySessionInfo; graph: StoryGraph } | null | undefined;
  #round: Round | null | undefined;

  constructor(
    private readonly sql: SqlStorage,
    private readonly meta: SequenceLog,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS play_seats (user_id TEXT PRIMARY KEY, name TEXT NOT NULL,
      joined_at INTEGER NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS play_votes (step INTEGER NOT NULL, user_id TEXT NOT NULL,
      choice_id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (step, user_id))`);
    sql.exec(`CREATE TABLE IF NOT EXISTS play_path (step INTEGER PRIMARY KEY, passage_id TEXT NOT NULL,
      choice_id TEXT, tallies TEXT NOT NULL, reason TEXT, decided_at INTEGER NOT NULL)`);
  }

  get session(): { info: PlaySessionInfo; graph: StoryGraph } | null {
    if (this.#session === undefined) {
      const raw = this.meta.getMeta('play.session');
      this.#session = raw
        ? (JSON.parse(raw) as { info: PlaySessionInfo; graph: StoryGraph })
        : null;
    }
    return this.#session;
  }

  setSession(session: { info: PlaySessionInfo; graph: StoryGraph }): void {
    this.meta.setMeta('play.session', JSON.stringify(session));
    this.#session = session;
  }

  get round(): Round | null {
    if (this.#round === undefined) {
      const raw = this.meta.getMeta('play.round');
      this.#round = raw ? (JSON.parse(raw) as Round | null) : null;
    }
    return this.#round;
  }

  setRound(round: Round | null): void {
    this.meta.setMeta('play.round', JSON.stringify(round));
    this.#round = round;
  }

  /** After a rolled-back commit: read everything from storage again. */
  reload(): void {
    this.#session = undefined;
    this.#round = undefined;
  }

  passage(id: string): Passage {
    const found = this.session?.graph.passages.find((p) => p.id === id);
    if (!found) throw new Error(`passage ${id} is not in the session's story`);
    return found;
  }

  // ---- seats ---------------------------------------------------------------------------

  hasSeat(userId: string): boolean {
    return (
      this.sql
        .exec<{ n: number }>('SELECT COUNT(*) AS n FROM play_seats WHERE user_id = ?', userId)
        .one().n > 0
    );
  }

  seats(): number {
    return this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM play_seats').one().n;
  }

  takeSeat(user: PublicUser, now = Date.now()): void {
    this.sql.exec(
      'INSERT INTO play_seats (user_id, name, joined_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      user.id,
      user.name,
      now,
    );
  }

  // ---- votes ---------------------------------------------------------------------------

  vote(step: number, userId: string, choiceId: string, now = Date.now()): void {
    this.sql.exec(
      `INSERT INTO play_votes (step, user_id, choice_id, at) VALUES (?, ?, ?, ?)
       ON CONFLICT (step, user_id) DO UPDATE SET choice_id = excluded.choice_id, at = excluded.at`,
      step,
      userId,
      choiceId,
      now,
    );
  }

  votes(step: number): Map<string, string> {
    const rows = this.sql
      .exec<{ user_id: string; choice_id: string }>(
        'SELECT user_id, choice_id FROM play_votes WHERE step = ?',
        step,
      )
      .toArray();
    return new Map(rows.map((r) => [r.user_id, r.choice_id]));
  }

  /** Votes per choice of the passage, every choice named (0 when nobody chose it). */
  tallies(step: number, passage: Passage): Record<string, number> {
    const tallies: Record<string, number> = {};
    for (const c of passage.choices) tallies[c.id] = 0;
    for (const choiceId of this.votes(step).values()) {
      if (choiceId in tallies) tallies[choiceId] = (tallies[choiceId] ?? 0) + 1;
    }
    return tallies;
  }

  // ---- the path ------------------------------------------------------------------------

  record(
    step: number,
    passageId: string,
    choiceId: string | null,
    tallies: Record<string, number>,
    reason: DecisionReason | null,
    now = Date.now(),
  ): void {
    this.sql.exec(
      `INSERT INTO play_path (step, passage_id, choice_id, tallies, reason, decided_at)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      step,
      passageId,
      choiceId,
      JSON.stringify(tallies),
      reason,
      now,
    );
  }

  path(): PlayStep[] {
    return this.sql
      .exec<{
        step: number;
        passage_id: string;
        choice_id: string | null;
        tallies: string;
        reason: string | null;
        decided_at: number;
      }>('SELECT * FROM play_path ORDER BY step')
      .toArray()
      .map((r) => ({
        step: r.step,
        passageId: r.passage_id,
        choiceId: r.choice_id,
        tallies: JSON.parse(r.tallies) as Record<string, number>,
        reason: r.reason as DecisionReason | null,
        decidedAt: r.decided_at,
      }));
  }
}

/** What players see of a passage: its text and its choices' labels (not where they lead). */
export function playPassage(p: Passage): PlayPassage {
  return { id: p.id, text: p.text, choices: p.choices.map((c) => ({ id: c.id, label: c.label })) };
}

/**
 * The winning choice: the most votes; a tie goes to the tied choice listed first in the passage
 * (so an author orders choices by which should win a tie, and with no votes the first wins).
 */
export function winner(passage: Passage, tallies: Record<string, number>): string {
  let best: string | null = null;
  let most = -1;
  for (const c of passage.choices) {
    const n = tallies[c.id] ?? 0;
    if (n > most) {
      best = c.id;
      most = n;
    }
  }
  if (best === null) throw new Error(`passage ${passage.id} has no choices`);
  return best;
}
