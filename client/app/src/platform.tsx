// The platform channel (issue 9), open on every page: system announcements for the banner and,
// for signed-in users, presence — who of the people on a page is online (`usePresence`).
import type { Platform, PresenceStatuses } from '@wavecast/sdk';
import { useStore } from '@wavecast/sdk/react';
import { createContext, type ReactNode, useContext, useEffect, useMemo, useState } from 'react';
import { client, useSession } from './session';

const PlatformContext = createContext<Platform | null>(null);

export function PlatformProvider(props: { children: ReactNode }) {
  const session = useSession();
  const userId = session?.user.id ?? null;
  const [platform, setPlatform] = useState<Platform | null>(null);
  // biome-ignore lint/correctness/useExhaustiveDependencies: reopened as the new user on sign-in/out
  useEffect(() => {
    const p = client.platform();
    setPlatform(p);
    return () => p.close();
  }, [userId]);
  return <PlatformContext.Provider value={platform}>{props.children}</PlatformContext.Provider>;
}

export function usePlatform(): Platform | null {
  return useContext(PlatformContext);
}

/** Online status of these users (signed in only; one watch per distinct set of ids). */
export function usePresence(ids: string[]): PresenceStatuses {
  const platform = usePlatform();
  const session = useSession();
  const key = [...new Set(ids)].sort().join(',');
  const watch = useMemo(
    () => (platform && session && key ? platform.presence.watch(key.split(',')) : null),
    [platform, session, key],
  );
  useEffect(() => () => watch?.unwatch(), [watch]);
  return useStore(watch?.statuses, {});
}

export function OnlineDot(props: { online: boolean | undefined; name: string }) {
  if (props.online === undefined) return null;
  return (
    <span
      className={props.online ? 'online-dot on' : 'online-dot'}
      data-testid="online-dot"
      data-online={props.online}
      role="img"
      aria-label={props.online ? `${props.name} is online` : `${props.name} is offline`}
    />
  );
}

export function AnnouncementBanner() {
  const platform = usePlatform();
  const announcements = useStore(platform?.announcements, []);
  const [hidden, setHidden] = useState<string[]>([]);
  const shown = announcements.filter((a) => !hidden.includes(a.id));
  if (shown.length === 0) return null;
  return (
    <section className="announcements" aria-label="Announcements">
      {shown.map((a) => (
        <div
          key={a.id}
          className={`announcement ${a.level}`}
          role="status"
          data-testid="announcement"
        >
          <span>{a.message}</span>
          <button
            type="button"
            aria-label="Dismiss announcement"
            onClick={() => setHidden((h) => [...h, a.id])}
          >
            ×
          </button>
        </div>
      ))}
    </section>
  );
}
