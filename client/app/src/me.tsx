// The signed-in user's own channel (issue 8), open on every page while signed in: the
// notification inbox and its unread count (the server's, so reading in one tab clears it in the
// others), toasts for new notifications, the balance, and "logged out everywhere".
import type { MeChannel, Notification } from '@wavecast/sdk';
import { createContext, type ReactNode, useContext, useEffect, useState } from 'react';
import { navigate } from './router';
import { client, setSession, useSession } from './session';
import { useToast } from './ui/toasts';

export interface Inbox {
  me: MeChannel;
  notifications: Notification[];
}

const MeContext = createContext<Inbox | null>(null);

function markRead(
  list: Notification[],
  f: { ids?: string[]; upTo?: number; all?: true; readAt: number },
) {
  return list.map((n) => {
    if (n.readAt !== null) return n;
    const hit = f.all || f.ids?.includes(n.id) || (f.upTo !== undefined && n.createdAt <= f.upTo);
    return hit ? { ...n, readAt: f.readAt } : n;
  });
}

export function MeProvider(props: { children: ReactNode }) {
  const session = useSession();
  const toast = useToast();
  const [inbox, setInbox] = useState<Inbox | null>(null);
  const userId = session?.user.id ?? null;
  useEffect(() => {
    if (!userId) {
      setInbox(null);
      return;
    }
    const me = client.me();
    setInbox({ me, notifications: [] });
    const offs = [
      me.on('welcome', () => setInbox({ me, notifications: [...me.recent] })),
      me.on('notification.new', (f) => {
        setInbox((i) =>
          i && !i.notifications.some((n) => n.id === f.notification.id)
            ? { ...i, notifications: [f.notification, ...i.notifications].slice(0, 50) }
            : i,
        );
        toast(f.notification.title, f.notification.link ?? undefined);
      }),
      me.on('notifications.read', (f) =>
        setInbox((i) => (i ? { ...i, notifications: markRead(i.notifications, f) } : i)),
      ),
      me.on('session.revoked', () => {
        setSession(null);
        navigate('/signin');
        toast('You were signed out on every device.');
      }),
    ];
    return () => {
      for (const off of offs) off();
      me.close();
    };
  }, [userId, toast]);
  return <MeContext.Provider value={inbox}>{props.children}</MeContext.Provider>;
}

/** Null while signed out. */
export function useInbox(): Inbox | null {
  return useContext(MeContext);
}
