// Co-authors' cursors and selections (y-protocols awareness): held in memory only, passed on to
// the others, never stored. Each Yjs client id belongs to the connection that first announced
// it; when that connection leaves, its states are removed for everyone. After the object sleeps
// the states are gone until their clients renew them (every 15 s), and clients drop a state
// they have not heard of for 30 s. docs/stories.md ("Awareness").
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { ChannelError } from '../../channel/errors';
import { StoryErrorCode } from '../../protocol/stories';

interface Entry {
  clock: number;
  state: string;
  cid: string;
}

interface Change {
  clientId: number;
  clock: number;
  state: string;
}

/** Most client ids one update may name (one per editor tab, in practice one). */
const MAX_CLIENTS_PER_UPDATE = 8;

export class AwarenessRelay {
  readonly #states = new Map<number, Entry>();

  /** Checks an update from connection `cid` and takes it in; throws what to answer if bad. */
  receive(cid: string, update: Uint8Array): void {
    const changes = decode(update);
    for (const c of changes) {
      const owner = this.#states.get(c.clientId);
      if (owner && owner.cid !== cid) {
        throw new ChannelError(
          StoryErrorCode.invalidUpdate,
          `awareness client ${c.clientId} belongs to another connection`,
          403,
        );
      }
    }
    for (const c of changes) {
      const known = this.#states.get(c.clientId);
      if (known && known.clock > c.clock) continue;
      this.#states.set(c.clientId, { clock: c.clock, state: c.state, cid });
    }
  }

  /** The update that removes every state of a connection that left, or null if it had none. */
  leave(cid: string): Uint8Array | null {
    const gone: Change[] = [];
    for (const [clientId, entry] of this.#states) {
      if (entry.cid !== cid) continue;
      gone.push({ clientId, clock: entry.clock + 1, state: 'null' });
      this.#states.delete(clientId);
    }
    return gone.length > 0 ? encode(gone) : null;
  }

  /** Every live state, as one update (for a joining connection's welcome), or null. */
  current(): Uint8Array | null {
    const live = [...this.#states]
      .filter(([, e]) => e.state !== 'null')
      .map(([clientId, e]) => ({ clientId, clock: e.clock, state: e.state }));
    return live.length > 0 ? encode(live) : null;
  }
}

function decode(update: Uint8Array): Change[] {
  try {
    const decoder = decoding.createDecoder(update);
    const count = decoding.readVarUint(decoder);
    if (count < 1 || count > MAX_CLIENTS_PER_UPDATE) throw new Error('client count');
    const changes: Change[] = [];
    for (let i = 0; i < count; i++) {
      const clientId = decoding.readVarUint(decoder);
      const clock = decoding.readVarUint(decoder);
      const state = decoding.readVarString(decoder);
      const parsed: unknown = JSON.parse(state);
      if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
        throw new Error('state');
      }
      changes.push({ clientId, clock, state });
    }
    if (decoding.hasContent(decoder)) throw new Error('trailing bytes');
    return changes;
  } catch {
    throw new ChannelError(StoryErrorCode.invalidUpdate, 'not an awareness update', 400);
  }
}

function encode(changes: Change[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, changes.length);
  for (const c of changes) {
    encoding.writeVarUint(encoder, c.clientId);
    encoding.writeVarUint(encoder, c.clock);
    encoding.writeVarString(encoder, c.state);
  }
  return encoding.toUint8Array(encoder);
}
