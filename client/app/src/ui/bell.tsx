// The notification bell: the unread count (the server's, the same in every tab), the latest
// notifications, mark one or all read; and the balance beside it.
import { useBalance, useUnreadCount } from '@wavecast/sdk/react';
import { useEffect, useRef, useState } from 'react';
import { useInbox } from '../me';
import { navigate } from '../router';
import { describe, formatTime } from './states';

export function Balance() {
  const inbox = useInbox();
  const balance = useBalance(inbox?.me);
  if (!balance) return null;
  return (
    <span className="balance" data-testid="balance" title="Your balance">
      {balance.amount} {balance.currency}
    </span>
  );
}

export function Bell() {
  const inbox = useInbox();
  const unread = useUnreadCount(inbox?.me);
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const close = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    window.addEventListener('keydown', close);
    return () => window.removeEventListener('keydown', close);
  }, [open]);
  if (!inbox) return null;
  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(describe(err));
    }
  };
  return (
    <div className="bell" ref={box}>
      <button
        type="button"
        aria-expanded={open}
        aria-controls="notifications"
        aria-label={`Notifications, ${unread} unread`}
        onClick={() => setOpen((o) => !o)}
      >
        <span aria-hidden="true">🔔</span>{' '}
        <span className={unread > 0 ? 'count unread' : 'count'} data-testid="unread">
          {unread}
        </span>
      </button>
      {open && (
        <section id="notifications" className="dropdown" aria-label="Notifications">
          <div className="inline">
            <strong>Notifications</strong>
            <button
              type="button"
              disabled={unread === 0}
              onClick={() => act(() => inbox.me.markAllRead())}
            >
              Mark all read
            </button>
          </div>
          {inbox.notifications.length === 0 ? (
            <p className="muted">Nothing yet.</p>
          ) : (
            <ul data-testid="notifications">
              {inbox.notifications.map((n) => (
                <li key={n.id} className={n.readAt === null ? 'unread' : ''}>
                  <button
                    type="button"
                    className="link"
                    onClick={() =>
                      act(async () => {
                        if (n.readAt === null) await inbox.me.markRead([n.id]);
                        if (n.link) {
                          setOpen(false);
                          navigate(n.link);
                        }
                      })
                    }
                  >
                    <strong>{n.title}</strong>
                    {n.readAt === null && <span className="sr-only"> (unread)</span>}
                    <span className="muted"> {n.body}</span>
                    <small className="muted"> · {formatTime(n.createdAt)}</small>
                  </button>
                </li>
              ))}
            </ul>
          )}
          {error && (
            <p className="form-error" role="alert">
              {error}
            </p>
          )}
        </section>
      )}
    </div>
  );
}
