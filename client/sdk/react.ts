// React bindings for the SDK (`@wavecast/sdk/react`): a provider for one client, and hooks that
// open a channel for a component's lifetime, follow its frames and its connection state.
// `useUnreadCount` and `useBalance` follow the user channel's stores (`client.me()`).
import {
  createContext,
  createElement,
  type ReactNode,
  useContext,
  useEffect,
  useRef,
  useState,
  useSyncExternalStore,
} from 'react';
import type { Channel, ChannelState, ServerFrameBase } from './channel';
import type { ConnectionState, WavecastClient } from './index';
import type { MeChannel, Store } from './me';

const ClientContext = createContext<WavecastClient | null>(null);

/** Makes `client` available to every hook below it. */
export function WavecastProvider(props: { client: WavecastClient; children?: ReactNode }) {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

/** The client given to the nearest `WavecastProvider`. */
export function useWavecast(): WavecastClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error('useWavecast: wrap the app in <WavecastProvider client={…}>');
  return client;
}

export interface ChannelHandle<F extends ServerFrameBase, S> {
  channel: Channel<F, S> | null;
  /** The snapshot of the latest welcome (replaced on a reconnect that could not resume). */
  snapshot: S | null;
  state: ChannelState;
  /** Grows with every welcome, so effects can rebuild derived state from a fresh snapshot. */
  welcomes: number;
}

/**
 * Opens a channel while the component is mounted (and `open` returns one), calls `onFrame` for
 * every frame (batches unpacked, duplicates dropped) and closes it on unmount or when `deps`
 * change. `onFrame` may change between renders; the latest one is called.
 *
 * ```tsx
 * const { snapshot, state } = useChannel((c) => c.station(id), [id], (frame) => …);
 * ```
 */
export function useChannel<F extends ServerFrameBase, S>(
  open: (client: WavecastClient) => Channel<F, S> | null,
  deps: readonly unknown[],
  onFrame?: (frame: F, channel: Channel<F, S>) => void,
): ChannelHandle<F, S> {
  const client = useWavecast();
  const handler = useRef(onFrame);
  handler.current = onFrame;
  const [handle, setHandle] = useState<ChannelHandle<F, S>>({
    channel: null,
    snapshot: null,
    state: 'connecting',
    welcomes: 0,
  });
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller names the deps of `open`
  useEffect(() => {
    const channel = open(client);
    if (!channel) {
      setHandle({ channel: null, snapshot: null, state: 'closed', welcomes: 0 });
      return;
    }
    setHandle({ channel, snapshot: null, state: channel.state, welcomes: 0 });
    const offFrames = channel.on('*', (frame) => {
      if (frame.type === 'welcome') {
        setHandle((h) => ({
          ...h,
          channel,
          snapshot: channel.snapshot,
          state: channel.state,
          welcomes: h.welcomes + 1,
        }));
      }
      handler.current?.(frame as F, channel);
    });
    const offState = channel.onStateChange((state) => setHandle((h) => ({ ...h, state })));
    return () => {
      offFrames();
      offState();
      channel.close();
    };
  }, [client, ...deps]);
  return handle;
}

/** The connection state of one channel, or (without one) the worst of all the client's. */
export function useConnectionState(
  channel?: Channel<ServerFrameBase, unknown> | null,
): ConnectionState {
  const client = useWavecast();
  return useSyncExternalStore(
    (notify) => (channel ? channel.onStateChange(notify) : client.onConnectionState(notify)),
    () => (channel ? channel.state : client.connectionState),
    () => 'connecting' as ConnectionState,
  );
}

/**
 * Keeps a value in step with a channel: `init` builds it from each welcome's snapshot, `reduce`
 * folds every later frame into it. A resumed welcome's snapshot already holds the events replayed
 * after it, so `reduce` must be idempotent (add a message only if its id is new; set counts).
 */
export function useChannelState<F extends ServerFrameBase, S, V>(
  channel: Channel<F, S> | null,
  init: (snapshot: S) => V,
  reduce: (value: V, frame: F) => V,
): V | null {
  const [value, setValue] = useState<V | null>(null);
  const reducer = useRef(reduce);
  reducer.current = reduce;
  const initial = useRef(init);
  initial.current = init;
  useEffect(() => {
    if (!channel) {
      setValue(null);
      return;
    }
    const snapshot = channel.snapshot;
    setValue(snapshot === null ? null : initial.current(snapshot));
    return channel.on('*', (frame) => {
      if (frame.type === 'welcome') {
        const fresh = channel.snapshot;
        if (fresh !== null) setValue(initial.current(fresh));
        return;
      }
      setValue((v) => (v === null ? v : reducer.current(v, frame as F)));
    });
  }, [channel]);
  return value;
}

/** A store's value (the user channel's unread count, balance …), re-rendering on every change. */
export function useStore<T>(store: Store<T> | null | undefined, fallback: T): T {
  return useSyncExternalStore(
    (notify) => (store ? store.subscribe(() => notify()) : () => {}),
    () => (store ? store.get() : fallback),
    () => fallback,
  );
}

/** The unread count the server owns for this user, kept in step across tabs and devices. */
export function useUnreadCount(me: MeChannel | null | undefined): number {
  return useStore(me?.unread, 0);
}

/** The user's latest balance (null until a backend sent one). */
export function useBalance(me: MeChannel | null | undefined) {
  return useStore(me?.balance, null);
}
