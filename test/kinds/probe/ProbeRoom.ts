// The test-only kind's object: notes (a message lane mirrored into the D1 table `probe_notes`,
// created by the tests), a coalesced value, and a frame that is always refused.
import { Coalesced } from '../../../worker/channel/coalesce';
import { ChannelError } from '../../../worker/channel/errors';
import { type LaneMessage, type LaneStore, MessageLane } from '../../../worker/channel/messages';
import { defineOutboxEffect } from '../../../worker/channel/outbox';
import { ChannelRoom, type Handlers } from '../../../worker/channel/room';
import type { PresenceSnapshot } from '../../../worker/protocol/core';
import { PROBE_MEMBER_LIMIT, PROBE_VALUE_WINDOW_MS, probe, type probeFrames } from './kind';

export interface Note extends LaneMessage {
  room: string;
}

export interface ProbeSnapshot {
  notes: Note[];
  value: number;
  presence: PresenceSnapshot;
}

/** Set by tests to make the D1 mirror fail, and count how often it was tried. */
interface Faults {
  failing: boolean;
  attempts: number;
}

const noteStore = (faults: Faults): LaneStore<Note> => ({
  insert: (d1, room, n) => {
    faults.attempts += 1;
    if (faults.failing) throw new Error('D1 is down (test)');
    return [
      d1
        .prepare(
          `INSERT INTO probe_notes (id, room, user_id, body, created_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (id) DO NOTHING`,
        )
        .bind(n.id, room, n.user.id, n.body, n.createdAt),
    ];
  },
  remove: (d1, d) => [
    d1
      .prepare(
        'UPDATE probe_notes SET deleted_at = ?, deleted_by = ? WHERE id = ? AND deleted_at IS NULL',
      )
      .bind(d.at, d.by, d.id),
  ],
  async find(d1, room, id) {
    const row = await d1
      .prepare(
        'SELECT user_id AS userId, deleted_at AS deletedAt FROM probe_notes WHERE id = ? AND room = ?',
      )
      .bind(id, room)
      .first<{ userId: string; deletedAt: number | null }>();
    return row ?? null;
  },
  async page() {
    return { messages: [], nextCursor: null };
  },
});

/**
 * The probe's outbox effect: records each call (with whether D1 already had the note committed
 * before it) and fails while `effectFailures` says so. Module state: effects run in this isolate.
 */
export const effectLog: { label: string; noteInD1: boolean }[] = [];
export const effectFailures = new Map<string, number>();

defineOutboxEffect<{ label: string; noteId: string | null }>('probe.effect', async (env, p) => {
  const row = p.noteId
    ? await env.DB.prepare('SELECT id FROM probe_notes WHERE id = ?').bind(p.noteId).first()
    : null;
  effectLog.push({ label: p.label, noteInD1: row !== null });
  const left = effectFailures.get(p.label) ?? 0;
  if (left > 0) {
    effectFailures.set(p.label, left - 1);
    throw new Error(`probe effect ${p.label} fails on purpose`);
  }
});

export class ProbeRoom extends ChannelRoom<typeof probeFrames, ProbeSnapshot> {
  readonly #notes: MessageLane<
    Note,
    { type: 'note.posted'; note: Note },
    { type: 'note.deleted'; noteId: string; by: string }
  >;
  readonly #value: Coalesced;
  #current = 0;
  readonly faults: Faults = { failing: false, attempts: 0 };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, probe, { memberLimit: PROBE_MEMBER_LIMIT });
    this.#notes = new MessageLane(this.kit, {
      name: 'notes',
      channelId: this.channelId,
      pageSize: 20,
      store: noteStore(this.faults),
      created: (note) => ({ type: 'note.posted', note }),
      deleted: (noteId, by) => ({ type: 'note.deleted', noteId, by }),
    });
    this.#value = new Coalesced(this.kit, 'value', PROBE_VALUE_WINDOW_MS, () => {
      this.broadcast({ type: 'value', value: this.#current });
    });
  }

  protected snapshot(): ProbeSnapshot {
    return { notes: this.#notes.recent(), value: this.#current, presence: this.presenceSnapshot() };
  }

  protected readonly handlers: Handlers<typeof probeFrames> = {
    'note.post': (call, frame) => {
      const note: Note = {
        id: crypto.randomUUID(),
        room: this.channelId,
        user: call.user,
        body: frame.body,
        createdAt: Date.now(),
      };
      return this.commit(call, (tx) => ({ seq: this.#notes.post(tx, note).seq, result: { note } }));
    },
    'note.delete': async (call, frame) => {
      const author = await this.#notes.author(frame.noteId);
      if (author === null) throw new ChannelError('not_found', 'no such note', 404);
      return this.commit(call, (tx) => ({
        seq: this.#notes.remove(tx, frame.noteId, author, call.user.id).seq,
        result: { noteId: frame.noteId },
      }));
    },
    'value.set': (_call, frame) => {
      this.#current = frame.value;
      this.#value.touch();
      return {};
    },
    refuse: () => {
      throw new ChannelError('refused', 'the probe refuses this on purpose', 409);
    },
    crash: () => {
      throw new Error('the probe crashes on purpose (a bug: answered as internal_error)');
    },
  };

  /** White-box: a commit whose body fails after publishing must leave no trace. */
  failingCommit(): { seq: number; outbox: number } {
    try {
      this.commit(null, (tx) => {
        tx.publish({ type: 'note.posted', note: null });
        tx.outbox('notes.insert', {});
        throw new Error('fails after publishing');
      });
    } catch {
      // expected
    }
    return { seq: this.log.seq, outbox: this.kit.outbox.pending() };
  }

  /**
   * White-box: commits a note and, after its D1 row, an effect row (or only the effect row);
   * with `rollBack` the commit throws after adding both.
   */
  commitWithEffect(label: string, withNote: boolean, rollBack = false): { outbox: number } {
    const note: Note | null = withNote
      ? {
          id: crypto.randomUUID(),
          room: this.channelId,
          user: { id: 'probe-user', name: 'Probe', role: 'listener' },
          body: label,
          createdAt: Date.now(),
        }
      : null;
    try {
      this.commit(null, (tx) => {
        if (note) this.#notes.post(tx, note);
        tx.outbox('probe.effect', { label, noteId: note?.id ?? null });
        if (rollBack) throw new Error('rolled back on purpose');
        return {};
      });
    } catch {
      // expected with rollBack
    }
    return { outbox: this.kit.outbox.pending() };
  }

  /** White-box: makes the D1 mirror fail (or work again); returns how often it was tried. */
  setD1Failing(failing: boolean): number {
    this.faults.failing = failing;
    return this.faults.attempts;
  }

  /** White-box: writes the outbox now (what the alarm would do). */
  flushOutbox(): Promise<void> {
    return this.kit.outbox.flush();
  }
}
