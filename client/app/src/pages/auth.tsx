// Sign up (choosing a role), sign in, and the account page.
import { type FormEvent, useState } from 'react';
import { Link, navigate } from '../router';
import { client, setSession, useSession } from '../session';
import { describe, useAction } from '../ui/states';

const ROLES = [
  ['listener', 'Listener', 'Tune in, chat, book events, read stories'],
  ['station_owner', 'Station owner', 'Run stations and go live'],
  ['organiser', 'Organiser', 'Create and sell events'],
] as const;

export function SignUp() {
  const act = useAction();
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    await act.run(async () => {
      const session = await client.register({
        displayName: String(form.get('name')),
        email: String(form.get('email')),
        password: String(form.get('password')),
        role: String(form.get('role')),
      });
      setSession(session);
      navigate('/');
    });
  };
  return (
    <section className="narrow">
      <h1>Create your account</h1>
      <form onSubmit={submit} className="stack">
        <label>
          Name
          <input name="name" required maxLength={64} autoComplete="nickname" />
        </label>
        <label>
          E-mail
          <input name="email" type="email" required autoComplete="email" />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            required
            minLength={8}
            autoComplete="new-password"
          />
        </label>
        <fieldset>
          <legend>I am a…</legend>
          {ROLES.map(([value, label, hint], i) => (
            <label key={value} className="choice">
              <input type="radio" name="role" value={value} defaultChecked={i === 0} />
              <span>
                <strong>{label}</strong> <small>{hint}</small>
              </span>
            </label>
          ))}
        </fieldset>
        {act.shown}
        <button type="submit" className="primary" disabled={act.busy}>
          {act.busy ? 'Creating…' : 'Sign up'}
        </button>
      </form>
    </section>
  );
}

export function SignIn() {
  const act = useAction();
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    await act.run(async () => {
      setSession(await client.login(String(form.get('email')), String(form.get('password'))));
      navigate('/');
    });
  };
  return (
    <section className="narrow">
      <h1>Sign in</h1>
      <form onSubmit={submit} className="stack">
        <label>
          E-mail
          <input name="email" type="email" required autoComplete="email" />
        </label>
        <label>
          Password
          <input name="password" type="password" required autoComplete="current-password" />
        </label>
        {act.shown}
        <button type="submit" className="primary" disabled={act.busy}>
          {act.busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </section>
  );
}

export function Account() {
  const session = useSession();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!session) return <SignInFirst />;
  const logoutAll = async () => {
    setBusy(true);
    setError(null);
    try {
      await client.logoutAll();
      setSession(null);
      navigate('/signin');
    } catch (err) {
      setError(describe(err));
      setBusy(false);
    }
  };
  const { user } = session;
  return (
    <section className="narrow">
      <h1>Your account</h1>
      <dl className="facts">
        <dt>Name</dt>
        <dd>{user.name}</dd>
        <dt>E-mail</dt>
        <dd>{user.email}</dd>
        <dt>Role</dt>
        <dd>{user.role.replace('_', ' ')}</dd>
        <dt>User id</dt>
        <dd>
          <code data-testid="my-user-id">{user.id}</code>
          <small> (give it to someone who sends you a ticket or adds you as a co-author)</small>
        </dd>
      </dl>
      <h2>Sessions</h2>
      <p>Signs you out in every browser and on every device, this one included.</p>
      <button type="button" className="danger" disabled={busy} onClick={logoutAll}>
        Log out everywhere
      </button>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

export function SignInFirst(props: { what?: string }) {
  return (
    <section className="narrow">
      <h1>Sign in first</h1>
      <p>You need an account {props.what ?? 'to see this page'}.</p>
      <p>
        <Link to="/signin">Sign in</Link> or <Link to="/signup">create an account</Link>.
      </p>
    </section>
  );
}
