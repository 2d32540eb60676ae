// The Wavecast web app: one client for the whole app, the lobby open on every page, and a route
// per flow.
import { WavecastProvider } from '@wavecast/sdk/react';
import { type JSX, lazy, StrictMode, Suspense } from 'react';
import { createRoot } from 'react-dom/client';
import { LobbyProvider } from './lobby';
import { MeProvider } from './me';
import { Admin } from './pages/admin';
import { Account, SignIn, SignUp } from './pages/auth';
import { Directory } from './pages/directory';
import { EventForm, EventPage, EventsList, Tickets } from './pages/events';
import { StationPage } from './pages/station';
import { Studio } from './pages/studio';
import { PlatformProvider } from './platform';
import { match, usePath } from './router';
import { client } from './session';
import { Layout } from './ui/layout';
import { Loading } from './ui/states';
import { ToastProvider } from './ui/toasts';
import './styles.css';

// Stories carry the Yjs editor: loaded when a story page is first opened, not with the app.
const stories = () => import('./pages/stories');
const StoriesList = lazy(() => stories().then((m) => ({ default: m.StoriesList })));
const StoryPage = lazy(() => stories().then((m) => ({ default: m.StoryPage })));
const PlayPage = lazy(() => stories().then((m) => ({ default: m.PlayPage })));

function Page() {
  const path = usePath();
  const routes: [string, (id: string) => JSX.Element][] = [
    ['/stations/:id', (id) => <StationPage key={id} id={id} />],
    ['/events/:id', (id) => <EventPage key={id} id={id} />],
    ['/stories/:id', (id) => <StoryPage key={id} id={id} />],
    ['/play/:id', (id) => <PlayPage key={id} id={id} />],
  ];
  const fixed: Record<string, () => JSX.Element> = {
    '/': () => <Directory />,
    '/signin': () => <SignIn />,
    '/signup': () => <SignUp />,
    '/account': () => <Account />,
    '/studio': () => <Studio />,
    '/events': () => <EventsList />,
    '/events/new': () => <EventForm />,
    '/tickets': () => <Tickets />,
    '/stories': () => <StoriesList />,
    '/admin': () => <Admin />,
  };
  const page = fixed[path];
  if (page) return page();
  for (const [pattern, render] of routes) {
    const params = match(pattern, path);
    if (params) return render(params.id ?? '');
  }
  return (
    <section className="narrow">
      <h1>Page not found</h1>
      <p>There is nothing at {path}.</p>
    </section>
  );
}

function Title() {
  const path = usePath();
  const section = path.split('/')[1] || 'live';
  document.title = `${section.charAt(0).toUpperCase()}${section.slice(1)} · Wavecast`;
  return null;
}

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <WavecastProvider client={client}>
      <ToastProvider>
        <LobbyProvider>
          <MeProvider>
            <PlatformProvider>
              <Title />
              <Layout>
                <Suspense fallback={<Loading />}>
                  <Page />
                </Suspense>
              </Layout>
            </PlatformProvider>
          </MeProvider>
        </LobbyProvider>
      </ToastProvider>
    </WavecastProvider>
  </StrictMode>,
);
