// A channel kind is declared once: its name, the binding of its Durable Object class, its client
// frames, who may connect, who may write and how presence is shown. Everything else is derived
// from that declaration: channel names and ids, the typed stub the routes call (refusals arrive
// as ChannelError), the socket route, the set of frame types. docs/architecture.md.
import { ErrorCode, type FrameMap, MAX_RTT_MS, type PublicUser } from '../protocol/core';
import { ChannelError } from './errors';
import { forwardToChannel } from './identity';
import { originAllowed } from './origins';

/** Who may open a socket on a channel of this kind (the object may refuse more, e.g. bans). */
export type ConnectRule = 'anyone' | 'signed-in';

/** Who may send frames other than `ping`. `nobody`: a read-only channel. */
export type WriteRule = 'signed-in' | 'nobody';

type NamespaceKey = {
  [K in keyof Env]: Env[K] extends DurableObjectNamespace<infer _T> ? K : never;
}[keyof Env];

export interface KindDeclaration<
  M extends FrameMap = FrameMap,
  B extends NamespaceKey = NamespaceKey,
> {
  /** The kind's name, shown in every welcome (`kind`). */
  kind: string;
  /** Channel names are `<prefix>:<id>`; a singleton kind (the lobby) has `id` in place of a prefix. */
  prefix: string;
  /** For a singleton kind: the one channel's name. */
  singleton?: string;
  binding: B;
  frames: M;
  connect: ConnectRule;
  write: WriteRule;
  /** `members` lists who is here and announces joins and leaves; `counts` only counts. */
  presence: 'members' | 'counts';
  /**
   * Event names the kind publishes itself, which the server API refuses as app events
   * (`booking.created`); a name ending in `.` reserves the family (`booking.`).
   */
  reservedEvents?: readonly string[];
}

/** What an RPC method of a room returns: a refusal crosses the RPC boundary as data. */
export type RpcResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { code: string; message: string; status: number } };

type Unwrapped<R> = R extends { ok: true; value: infer V } ? V : never;

/** A room's stub as the routes use it: each RPC method resolves to its value or throws a ChannelError. */
export type RoomClient<S> = {
  [K in keyof S as S[K] extends (...args: never[]) => unknown ? K : never]: S[K] extends (
    ...args: infer A
  ) => infer R
    ? (...args: A) => Promise<Unwrapped<Awaited<R>>>
    : never;
};

export function unwrapRpc<T>(result: RpcResult<T>): T {
  if (result.ok) return result.value;
  const { status, code, message } = result.error;
  throw new ChannelError(code, message, status);
}

const RESUME_SINCE = /^\d{1,15}$/;
const RESUME_EPOCH = /^[A-Za-z0-9_-]{1,64}$/;

export function defineKind<const M extends FrameMap, const B extends NamespaceKey>(
  declaration: KindDeclaration<M, B>,
) {
  const separator = `${declaration.prefix}:`;
  type Stub = ReturnType<Env[B]['get']>;

  const kind = {
    ...declaration,
    frameTypes: new Set(Object.keys(declaration.frames)) as ReadonlySet<string>,

    /** The channel (and object) name for an id. */
    channelOf(id: string): string {
      return declaration.singleton ?? `${separator}${id}`;
    },

    /** The id inside a channel name of this kind. */
    idOf(channel: string): string {
      if (declaration.singleton) return channel;
      if (!channel.startsWith(separator)) {
        throw new Error(`${channel} is not a ${declaration.kind} channel`);
      }
      return channel.slice(separator.length);
    },

    /** The object's raw stub (tests and white-box checks). */
    stub(env: Env, id = ''): Stub {
      const namespace = env[declaration.binding] as unknown as DurableObjectNamespace;
      return namespace.get(namespace.idFromName(kind.channelOf(id))) as Stub;
    },

    /** The object as the routes call it: values, or a thrown ChannelError. */
    room(env: Env, id = ''): RoomClient<Stub> {
      const stub = kind.stub(env, id) as unknown as Record<string, (...a: unknown[]) => unknown>;
      return new Proxy({} as RoomClient<Stub>, {
        get(_target, method) {
          if (typeof method !== 'string') return undefined;
          // Called on the stub itself: an RPC stub has no `apply` of its own to lend.
          return async (...args: unknown[]) =>
            unwrapRpc((await stub[method]?.(...args)) as RpcResult<unknown>);
        },
      });
    },

    /**
     * Forwards a WebSocket upgrade to the channel's object after the worker checked what it can:
     * the upgrade header, the Origin, the token (verified by the auth middleware), the resume query.
     */
    connect(request: Request, env: Env, user: PublicUser | null, id = ''): Promise<Response> {
      if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
        throw new ChannelError(
          ErrorCode.upgradeRequired,
          'this route only accepts WebSocket upgrades',
          426,
        );
      }
      if (!originAllowed(request.headers.get('origin') ?? undefined, env)) {
        throw new ChannelError(
          ErrorCode.originNotAllowed,
          'this Origin may not open sockets here',
          403,
        );
      }
      const query = new URL(request.url).searchParams;
      const since = query.get('since');
      const epoch = query.get('epoch');
      const rtt = query.get('rtt');
      if (rtt !== null && !(RESUME_SINCE.test(rtt) && Number(rtt) <= MAX_RTT_MS)) {
        throw new ChannelError(
          ErrorCode.invalidQuery,
          `"rtt" must be a whole number of milliseconds, 0–${MAX_RTT_MS}`,
          400,
        );
      }
      if (
        (since !== null && !RESUME_SINCE.test(since)) ||
        (epoch !== null && !RESUME_EPOCH.test(epoch)) ||
        (since === null) !== (epoch === null)
      ) {
        throw new ChannelError(
          ErrorCode.invalidQuery,
          'resume needs both "since" (a non-negative integer) and "epoch"',
          400,
        );
      }
      if (!user && declaration.connect === 'signed-in') {
        throw new ChannelError(ErrorCode.authRequired, 'this channel needs a token', 401);
      }
      const stub = kind.stub(env, id) as unknown as DurableObjectStub;
      return stub.fetch(forwardToChannel(request, user));
    },
  };
  return kind;
}

export type Kind<M extends FrameMap = FrameMap> = ReturnType<typeof defineKind<M, NamespaceKey>>;
