// A story's Yjs document, kept in the object's SQLite: a compacted base (the whole state, in
// chunks under the 2 MB row limit) plus the updates that arrived since, one row each. The Y.Doc
// in memory is rebuilt from them when first needed after a wake. docs/stories.md ("Persistence").
import * as Y from 'yjs';
import { ChannelError } from '../../channel/errors';
import type { Tx } from '../../channel/room';
import {
  BODY_TEXT,
  MAX_DOCUMENT_BYTES,
  MAX_UPDATE_BYTES,
  StoryErrorCode,
} from '../../protocol/stories';

/** Base chunks stay well under the 2 MB a SQLite value may hold in a Durable Object. */
const BASE_CHUNK_BYTES = 256 * 1024;
/** Updates kept beside the base before they are folded into it. */
export const COMPACT_AFTER_UPDATES = 200;

export class StoryDocument {
  #doc: Y.Doc | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {
    sql.exec('CREATE TABLE IF NOT EXISTS doc_base (part INTEGER PRIMARY KEY, bytes BLOB NOT NULL)');
    sql.exec(
      'CREATE TABLE IF NOT EXISTS doc_updates (id INTEGER PRIMARY KEY AUTOINCREMENT, bytes BLOB NOT NULL)',
    );
  }

  /** The document, rebuilt from storage the first time it is needed. */
  get doc(): Y.Doc {
    this.#doc ??= this.#restore();
    return this.#doc;
  }

  get body(): string {
    return this.doc.getText(BODY_TEXT).toString();
  }

  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.doc);
  }

  /** Everything the holder of `stateVector` lacks (Yjs sync step 2). */
  missing(stateVector: Uint8Array): Uint8Array {
    try {
      return Y.encodeStateAsUpdate(this.doc, stateVector);
    } catch {
      throw new ChannelError(StoryErrorCode.invalidUpdate, 'not a Yjs state vector', 400);
    }
  }

  state(): Uint8Array {
    return Y.encodeStateAsUpdate(this.doc);
  }

  /** Updates stored beside the base, and the bytes base and updates take. */
  stored(): { updates: number; bytes: number } {
    const base = this.sql
      .exec<{ n: number | null }>('SELECT SUM(LENGTH(bytes)) AS n FROM doc_base')
      .one().n;
    const log = this.sql
      .exec<{ c: number; n: number | null }>(
        'SELECT COUNT(*) AS c, SUM(LENGTH(bytes)) AS n FROM doc_updates',
      )
      .one();
    return { updates: log.c, bytes: (base ?? 0) + (log.n ?? 0) };
  }

  /**
   * Applies a co-author's update to the document in memory. Refuses what is not a Yjs update
   * or would grow the document past its limit; returns false when it changes nothing (a
   * repeat). The caller commits it with `store` in the same transaction as its event.
   */
  apply(update: Uint8Array): boolean {
    if (update.byteLength > MAX_UPDATE_BYTES) {
      throw new ChannelError(
        StoryErrorCode.updateTooLarge,
        `an update may hold at most ${MAX_UPDATE_BYTES} bytes; send it in parts`,
        413,
      );
    }
    try {
      Y.decodeUpdate(update);
    } catch {
      throw new ChannelError(StoryErrorCode.invalidUpdate, 'not a Yjs update (v1 encoding)', 400);
    }
    this.#makeRoomFor(update.byteLength);
    const doc = this.doc;
    const pendingBefore = [doc.store.pendingStructs?.update, doc.store.pendingDs];
    let changed = false;
    const onUpdate = () => {
      changed = true;
    };
    doc.on('update', onUpdate);
    try {
      Y.applyUpdate(doc, update);
    } catch {
      // Half applied, perhaps: forget the copy in memory, storage still has the truth.
      this.#doc = null;
      throw new ChannelError(StoryErrorCode.invalidUpdate, 'the update could not be applied', 400);
    } finally {
      doc.off('update', onUpdate);
    }
    // Held back for a missing dependency, it still has to be stored to be applied later.
    const pendingAfter = [doc.store.pendingStructs?.update, doc.store.pendingDs];
    return changed || pendingAfter.some((p, i) => p !== pendingBefore[i] && p != null);
  }

  /** Stores an applied update (inside the caller's commit). */
  store(_tx: Tx, update: Uint8Array): void {
    this.sql.exec('INSERT INTO doc_updates (bytes) VALUES (?)', update);
  }

  /** A commit that failed after `apply`: the copy in memory is ahead of storage, drop it. */
  forget(): void {
    this.#doc = null;
  }

  /** Writes the first text of a new document (from the story's record) as its base. */
  seed(body: string): void {
    if (body === '') return;
    this.doc.getText(BODY_TEXT).insert(0, body);
    this.compact();
  }

  /** Folds the updates into the base: one state, the same document. */
  compact(): void {
    const state = this.state();
    this.transaction(() => {
      this.sql.exec('DELETE FROM doc_base');
      for (let part = 0; part * BASE_CHUNK_BYTES < state.byteLength; part++) {
        const chunk = state.subarray(part * BASE_CHUNK_BYTES, (part + 1) * BASE_CHUNK_BYTES);
        this.sql.exec('INSERT INTO doc_base (part, bytes) VALUES (?, ?)', part, chunk);
      }
      this.sql.exec('DELETE FROM doc_updates');
    });
  }

  /** Compacts if enough updates piled up (after a commit, and when edits settle). */
  compactIfDue(minUpdates = COMPACT_AFTER_UPDATES): boolean {
    if (this.stored().updates < minUpdates) return false;
    this.compact();
    return true;
  }

  #makeRoomFor(bytes: number): void {
    if (this.stored().bytes + bytes <= MAX_DOCUMENT_BYTES) return;
    // The stored updates may overlap; the compacted state is the document's real size.
    this.compact();
    if (this.stored().bytes + bytes > MAX_DOCUMENT_BYTES) {
      throw new ChannelError(
        StoryErrorCode.documentTooLarge,
        `a story's document may grow to at most ${MAX_DOCUMENT_BYTES} bytes`,
        413,
      );
    }
  }

  #restore(): Y.Doc {
    const doc = new Y.Doc();
    const parts = this.sql
      .exec<{ bytes: ArrayBuffer }>('SELECT bytes FROM doc_base ORDER BY part')
      .toArray()
      .map((r) => new Uint8Array(r.bytes));
    const updates = this.sql
      .exec<{ bytes: ArrayBuffer }>('SELECT bytes FROM doc_updates ORDER BY id')
      .toArray()
      .map((r) => new Uint8Array(r.bytes));
    Y.transact(doc, () => {
      if (parts.length > 0) Y.applyUpdate(doc, concat(parts));
      for (const update of updates) Y.applyUpdate(doc, update);
    });
    return doc;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
