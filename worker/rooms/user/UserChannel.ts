// A user's own channel: every tab and device of one user. It is the single writer of the user's
// notification inbox (each notification and each read committed here, with its sequenced event
// and its outbox row for D1), so the unread count it pushes is the count of its rows and never
// drifts. It also carries the latest balance a trusted backend sent, and logs the user out
// everywhere. docs/notifications.md.
import { ChannelError } from '../../channel/errors';
import { quotaOf } from '../../channel/quota';
import {
  type Call,
  ChannelRoom,
  type Connection,
  type Handled,
  type Handlers,
} from '../../channel/room';
import { findPublicUser } from '../../db/accounts';
import { notificationWriters, recordRevocation } from '../../db/notifications';
import { CloseCode, ErrorCode, type PublicUser } from '../../protocol/core';
import {
  type Balance,
  type BalanceInput,
  balanceInput,
  MAX_NOTIFICATION_PAGE,
  NOTIFICATION_PAGE_SIZE,
  type Notification,
  type NotificationInput,
  type NotificationPage,
  notificationInput,
  type ReadRequest,
  type ReadResult,
  type SessionRevokedFrame,
  type UserSnapshot,
  type userFrames,
} from '../../protocol/user';
import { PresenceFeed } from '../presence/feed';
import { Inbox } from './inbox';
import { userChannel } from './kind';

const BALANCE = 'balance';
const REVOKED_AT = 'revokedAt';

function invalid(error: { issues: { path: PropertyKey[]; message: string }[] }): ChannelError {
  const issues = error.issues.map((i) => ({
    path: i.path.map(String).join('.'),
    message: i.message,
  }));
  const first = issues[0];
  return new ChannelError(
    ErrorCode.invalidBody,
    first ? `invalid input: "${first.path || '(body)'}" ${first.message}` : 'invalid input',
    400,
    issues,
  );
}

export class UserChannel extends ChannelRoom<typeof userFrames, UserSnapshot> {
  readonly #inbox: Inbox;
  readonly #presence: PresenceFeed;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, userChannel);
    this.#inbox = new Inbox(this.sql, this.channelId);
    this.#presence = new PresenceFeed(env, this.log, this.channelId, (p) => ctx.waitUntil(p));
    for (const [op, writer] of Object.entries(notificationWriters)) {
      this.kit.outbox.register(op, writer as (d1: D1Database, p: never) => D1PreparedStatement[]);
    }
  }

  /** The server API publishes only to the channels of users that exist. */
  protected override async mustExist(): Promise<void> {
    if (!(await findPublicUser(this.env.DB, this.channelId))) {
      throw new ChannelError(ErrorCode.userNotFound, 'no such user', 404);
    }
  }

  /** Only the user this channel belongs to (admins act through the API, not the socket). */
  protected override authorize(user: PublicUser | null): void {
    if (!user || user.id !== this.channelId) {
      throw new ChannelError(ErrorCode.forbidden, "this is another user's channel", 403);
    }
  }

  // Platform presence (docs/presence.md): the user is online while a device is connected here.
  // A device that vanished leaves through the heartbeat sweep, which calls onLeave too.
  protected override onJoin(_conn: Connection, firstOfUser: boolean): void {
    if (firstOfUser) this.#presence.changed(true);
  }

  protected override onLeave(_conn: Connection, lastOfUser: boolean): void {
    if (lastOfUser) this.#presence.changed(false);
  }

  protected snapshot(): UserSnapshot {
    const page = this.#inbox.page(NOTIFICATION_PAGE_SIZE, null, false);
    return {
      userId: this.channelId,
      unread: this.#inbox.unread(),
      notifications: page.notifications,
      nextCursor: page.nextCursor,
      balance: this.#balance(),
      devices: this.presenceCounts().connections,
    };
  }

  protected readonly handlers: Handlers<typeof userFrames> = {
    'notifications.read': (call, frame) => this.#read(call, frame),
    'notifications.read-all': (call) => this.#readUpTo(call, null),
  };

  // ---- RPC: the routes and other kinds ---------------------------------------------

  /**
   * Delivers a notification. With a `key` (a source key: "booking.confirmed:<bookingId>"), a
   * repeat returns the first notification and changes nothing (`created: false`).
   */
  notify(input: NotificationInput) {
    return this.rpc(() => {
      const parsed = notificationInput.safeParse(input);
      if (!parsed.success) throw invalid(parsed.error);
      const n = parsed.data;
      const key = n.key ?? null;
      const now = Date.now();
      return this.commit(null, (tx) => {
        const existing = key === null ? null : this.#inbox.bySource(key);
        if (existing) {
          return { notification: existing, created: false, unread: this.#inbox.unread() };
        }
        const { notification, row } = this.#inbox.insert(
          {
            kind: n.kind,
            title: n.title,
            body: n.body,
            link: n.link ?? null,
            data: n.data ?? null,
            key,
          },
          now,
        );
        const unread = this.#inbox.unread();
        const event = tx.publish({ type: 'notification.new', notification, unread });
        tx.outbox('notification.created', row);
        return { notification, created: true, unread, seq: event.seq };
      });
    });
  }

  /** A page of the inbox, newest first, current (from this object). */
  notifications(query: { limit?: number; before?: string; unread?: boolean } = {}) {
    return this.rpc((): NotificationPage => {
      const limit = Math.min(
        MAX_NOTIFICATION_PAGE,
        Math.max(1, query.limit ?? NOTIFICATION_PAGE_SIZE),
      );
      const before = query.before === undefined ? null : Number(query.before);
      if (before !== null && !Number.isSafeInteger(before)) {
        throw new ChannelError(
          ErrorCode.invalidQuery,
          '"before" must be a cursor from a previous page',
          400,
        );
      }
      const page = this.#inbox.page(limit, before, query.unread === true);
      return { ...page, unread: this.#inbox.unread() };
    });
  }

  unreadCount() {
    return this.rpc(() => ({ unread: this.#inbox.unread() }));
  }

  balance() {
    return this.rpc(() => ({ balance: this.#balance() }));
  }

  /**
   * Carries a balance a trusted backend computed. A higher version replaces the value and goes to
   * every device; the same version with the same value is a retry (`applied: false`); anything
   * older, or the same version with another value, is refused with 409 `stale_version`.
   */
  setBalance(input: BalanceInput) {
    return this.rpc(() => {
      const parsed = balanceInput.safeParse(input);
      if (!parsed.success) throw invalid(parsed.error);
      const { currency, version } = parsed.data;
      const amount =
        typeof parsed.data.amount === 'number' ? String(parsed.data.amount) : parsed.data.amount;
      const current = this.#balance();
      if (current && version <= current.version) {
        if (
          version === current.version &&
          current.amount === amount &&
          current.currency === currency
        ) {
          return { balance: current, applied: false };
        }
        throw new ChannelError(
          ErrorCode.staleVersion,
          `version ${version} is not newer than the balance's version ${current.version}`,
          409,
        );
      }
      const balance: Balance = { amount, currency, version, updatedAt: Date.now() };
      return this.commit(null, (tx) => {
        this.log.setMeta(BALANCE, JSON.stringify(balance));
        const event = tx.publish({ type: 'balance.updated', balance });
        return { balance, applied: true, seq: event.seq };
      });
    });
  }

  /**
   * Logs the user out everywhere: tokens issued before now are refused at every door (D1 holds
   * the moment for the worker's check; the user's quota refuses new sockets), every device here
   * gets `session.revoked` and is closed with 4401, and so are the user's sockets on every other
   * channel (through the leases in the user's ConnectionQuota).
   */
  revokeSessions(reason = 'logged out everywhere') {
    return this.rpc(async () => {
      const revokedAt = Math.max(Date.now(), Number(this.log.getMeta(REVOKED_AT) ?? 0));
      // D1 first: once this answers, the worker's door (REST and sockets) reads it.
      await recordRevocation(this.env.DB, this.channelId, revokedAt);
      this.log.setMeta(REVOKED_AT, String(revokedAt));
      const frame: SessionRevokedFrame = { type: 'session.revoked', revokedAt, reason };
      let closed = 0;
      for (const conn of [...this.connections()]) {
        this.sendTo(conn, frame);
        this.closeConnection(conn, CloseCode.unauthenticated, 'session revoked');
        closed += 1;
      }
      const elsewhere = await quotaOf(this.env, this.channelId).revoke(revokedAt);
      return { revokedAt, closed: closed + elsewhere };
    });
  }

  // ---- behaviour ---------------------------------------------------------------------

  #balance(): Balance | null {
    return JSON.parse(this.log.getMeta(BALANCE) ?? 'null') as Balance | null;
  }

  #read(call: Call, request: ReadRequest): Handled {
    if (request.ids) {
      const missing = this.#inbox.missing(request.ids);
      if (missing.length > 0) {
        throw new ChannelError(
          ErrorCode.notificationNotFound,
          `no such notification in your inbox: ${missing.slice(0, 5).join(', ')}`,
          404,
        );
      }
      const ids = request.ids;
      const now = Date.now();
      return this.commit(call, (tx) => {
        const marked = this.#inbox.markIds(ids, now);
        const unread = this.#inbox.unread();
        const result: ReadResult = { marked: marked.ids.length, ids: marked.ids, unread };
        // Marking what is already read changes nothing and sends nothing.
        if (marked.ids.length === 0) return { result };
        const event = tx.publish({
          type: 'notifications.read',
          ids: marked.ids,
          marked: marked.ids.length,
          readAt: now,
          unread,
        });
        tx.outbox('notifications.read', marked.mirror);
        return { seq: event.seq, result };
      });
    }
    return this.#readUpTo(call, request.upTo ?? null);
  }

  /** Read-all (`upTo` null) or a watermark: everything created at or before `upTo`. */
  #readUpTo(call: Call, upTo: number | null): Handled {
    const now = Date.now();
    if (upTo !== null && upTo > now) {
      throw new ChannelError(
        ErrorCode.watermarkInFuture,
        '"upTo" is in the future: use the createdAt of the newest notification you have seen',
        400,
      );
    }
    return this.commit(call, (tx) => {
      const { marked, mirror } = this.#inbox.markUpTo(upTo, now);
      const unread = this.#inbox.unread();
      const result = { marked, unread, ...(upTo === null ? {} : { upTo }) };
      if (marked === 0) return { result };
      const event = tx.publish({
        type: 'notifications.read',
        ...(upTo === null ? { all: true as const } : { upTo }),
        marked,
        readAt: now,
        unread,
      });
      tx.outbox('notifications.read', mirror);
      return { seq: event.seq, result };
    });
  }
}

export type { Notification };
