// The frame of every page: a skip link, the header with navigation for the signed-in role, the
// connection indicator, and the main landmark.
import { useConnectionState } from '@wavecast/sdk/react';
import { type ReactNode, useState } from 'react';
import { AnnouncementBanner } from '../platform';
import { Link, navigate, usePath } from '../router';
import { client, setSession, useSession } from '../session';
import { Balance, Bell } from './bell';

const LABELS = {
  open: 'Online',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  closed: 'Online',
} as const;

export function ConnectionIndicator() {
  const state = useConnectionState();
  const shown = state === 'closed' ? 'open' : state;
  return (
    <output className={`connection ${shown}`} data-testid="connection" data-state={shown}>
      <span className="dot" aria-hidden="true" />
      {LABELS[shown]}
    </output>
  );
}

export function Layout(props: { children: ReactNode }) {
  const session = useSession();
  const path = usePath();
  const [menuOpen, setMenuOpen] = useState(false);
  const role = session?.user.role;
  const links: [string, string][] = [
    ['/', 'Live'],
    ['/events', 'Events'],
    ['/stories', 'Stories'],
  ];
  if (session) links.push(['/tickets', 'My tickets']);
  if (role === 'station_owner' || role === 'admin') links.push(['/studio', 'Studio']);
  if (role === 'organiser' || role === 'admin') links.push(['/events/new', 'New event']);
  if (role === 'admin') links.push(['/admin', 'Admin']);
  const current = (to: string) =>
    to === '/'
      ? path === '/' || path.startsWith('/stations')
      : path === to || path.startsWith(`${to}/`);
  const signOut = () => {
    setSession(null);
    client.token = null;
    navigate('/');
  };
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          Wavecast
        </Link>
        <button
          type="button"
          className="menu-toggle"
          aria-expanded={menuOpen}
          aria-controls="nav"
          onClick={() => setMenuOpen((o) => !o)}
        >
          Menu
        </button>
        <nav id="nav" aria-label="Main" className={menuOpen ? 'open' : ''}>
          <ul>
            {links.map(([to, label]) => (
              <li key={to}>
                <Link to={to} aria-current={current(to) ? 'page' : undefined}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="account">
          <ConnectionIndicator />
          {session ? (
            <>
              <Balance />
              <Bell />
              <Link to="/account" className="who">
                <span data-testid="signed-in-as">{session.user.name}</span>
              </Link>
              <button type="button" onClick={signOut}>
                Sign out
              </button>
            </>
          ) : (
            <>
              <Link to="/signin">Sign in</Link>
              <Link to="/signup" className="button">
                Sign up
              </Link>
            </>
          )}
        </div>
      </header>
      <AnnouncementBanner />
      <main id="main" tabIndex={-1}>
        {props.children}
      </main>
    </>
  );
}
