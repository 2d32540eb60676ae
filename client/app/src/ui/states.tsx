// Shared states and small widgets: loading, empty, error, badges, a line chart, and `useApi`.
import { ApiRequestError } from '@wavecast/sdk';
import { type ReactNode, useCallback, useEffect, useState } from 'react';

export function Loading(props: { label?: string }) {
  return (
    <p className="state" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {props.label ?? 'Loading…'}
    </p>
  );
}

export function Empty(props: { children: ReactNode }) {
  return <p className="state empty">{props.children}</p>;
}

export function ErrorBox(props: { error: unknown; onRetry?: () => void }) {
  return (
    <div className="state error" role="alert">
      <p>{describe(props.error)}</p>
      {props.onRetry && (
        <button type="button" onClick={props.onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function describe(error: unknown): string {
  if (error instanceof ApiRequestError) return error.message;
  if (error instanceof Error) {
    if (error.name === 'TypeError')
      return 'The server could not be reached. Check your connection.';
    return error.message;
  }
  return String(error);
}

export function LiveBadge(props: { live: boolean }) {
  return props.live ? (
    <span className="badge live" data-testid="live-badge">
      LIVE
    </span>
  ) : (
    <span className="badge offline">Off air</span>
  );
}

/**
 * A user's action (a form submit, a button): `busy` while it runs, its error shown as an alert
 * (`shown`) until the next try; `run` answers whether it succeeded.
 */
export function useAction() {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await fn();
      return true;
    } catch (err) {
      setError(describe(err));
      return false;
    } finally {
      setBusy(false);
    }
  };
  const shown = error && (
    <p className="form-error" role="alert">
      {error}
    </p>
  );
  return { run, busy, shown };
}

/** Loads something over REST; `reload()` asks again. */
export function useApi<T>(load: () => Promise<T>, deps: readonly unknown[]) {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const [round, setRound] = useState(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller names the deps of `load`
  useEffect(() => {
    let cancelled = false;
    setState((s) => ({ ...s, loading: true, error: null }));
    load().then(
      (data) => !cancelled && setState({ data, error: null, loading: false }),
      (error: unknown) => !cancelled && setState({ data: null, error, loading: false }),
    );
    return () => {
      cancelled = true;
    };
  }, [...deps, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { ...state, reload, setData: (data: T) => setState((s) => ({ ...s, data })) };
}

/** A small line chart of the last values (oldest first), with its title and latest value. */
export function LineChart(props: {
  title: string;
  values: number[];
  unit?: string;
  testId?: string;
}) {
  const { values } = props;
  const width = 260;
  const height = 70;
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values
    .map((v, i) => `${(i * step).toFixed(1)},${(height - (v / max) * (height - 4) - 2).toFixed(1)}`)
    .join(' ');
  const latest = values.at(-1) ?? 0;
  return (
    <figure className="chart" data-testid={props.testId}>
      <figcaption>
        {props.title}: <strong className="chart-value">{format(latest)}</strong>
        {props.unit ? ` ${props.unit}` : ''}
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${props.title} over time`}>
        <polyline points={points} fill="none" stroke="currentColor" strokeWidth="2" />
      </svg>
    </figure>
  );
}

function format(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
