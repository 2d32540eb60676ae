// Counts every request the worker answers, by route group and status, with its latency. Each
// isolate keeps its counts in memory and reports them to the metrics hub at most once per
// FLUSH_WINDOW_MS: at once when the window allows, else after a wait that rides on the request
// that made the counts (`waitUntil`), so a quiet isolate still reports within the window. Every
// request is also one Analytics Engine data point, when that binding exists. docs/operations.md.
import { createMiddleware } from 'hono/factory';
import {
  analyticsOf,
  emptyHistogram,
  FLUSH_WINDOW_MS,
  type Histogram,
  mergeHistogram,
  metricsHub,
  observe,
} from '../channel/metrics';
import type { RequestReport } from '../channel/metrics-hub';
import type { AppEnv } from './app-env';

/** Route groups by path prefix (first match wins); the label on /metrics, never a path with ids. */
const ROUTE_GROUPS: [prefix: string, group: string][] = [
  ['/api/auth/', 'auth'],
  ['/api/items/', 'comments'],
  ['/api/stations', 'stations'],
  ['/api/events', 'events'],
  ['/api/bookings', 'bookings'],
  ['/api/tickets/', 'bookings'],
  ['/api/stories', 'stories'],
  ['/api/sessions/', 'play'],
  ['/api/me', 'me'],
  ['/api/admin/', 'admin'],
  ['/api/announcements', 'broadcast'],
  ['/api/presence', 'presence'],
  ['/api/', 'api_other'],
  ['/server/', 'server_api'],
  ['/ws', 'ws'],
  ['/health', 'health'],
  ['/metrics', 'metrics'],
];

/** Probes and scrapes: counted, but not part of the failure ratio /health judges (they would
 * drown a quiet service's real traffic, and a failing probe is not a user's failure). */
const OUTSIDE_WINDOW = new Set(['health', 'metrics']);

export function routeGroup(path: string): string {
  for (const [prefix, group] of ROUTE_GROUPS) if (path.startsWith(prefix)) return group;
  return 'other';
}

interface Pending {
  routes: Record<string, { statuses: Record<string, number>; latencyMs: Histogram }>;
  handled: number;
  failures: number;
  any: boolean;
}

const empty = (): Pending => ({ routes: {}, handled: 0, failures: 0, any: false });

let pending = empty();
let lastFlush = 0;
let flushDue = false;

function routeOf(group: string) {
  pending.routes[group] ??= { statuses: {}, latencyMs: emptyHistogram() };
  return pending.routes[group];
}

function record(group: string, status: number, ms: number): void {
  const route = routeOf(group);
  const key = String(status);
  route.statuses[key] = (route.statuses[key] ?? 0) + 1;
  observe(route.latencyMs, ms);
  pending.any = true;
  if (OUTSIDE_WINDOW.has(group)) return;
  pending.handled += 1;
  if (status >= 500) pending.failures += 1;
}

/** Reports this isolate's counts now (also before /metrics and /health read the hub). */
export async function flushRequests(env: Env): Promise<void> {
  lastFlush = Date.now();
  if (!pending.any) return;
  const taken = pending;
  pending = empty();
  const report: RequestReport = {
    at: lastFlush,
    routes: taken.routes,
    window: { handled: taken.handled, failures: taken.failures },
  };
  try {
    await metricsHub(env).reportRequests(report);
  } catch (err) {
    // Put back, to go with the next report.
    for (const [group, r] of Object.entries(taken.routes)) {
      const into = routeOf(group);
      for (const [status, n] of Object.entries(r.statuses)) {
        into.statuses[status] = (into.statuses[status] ?? 0) + n;
      }
      mergeHistogram(into.latencyMs, r.latencyMs);
    }
    pending.handled += taken.handled;
    pending.failures += taken.failures;
    pending.any = true;
    console.error('request metrics report failed', err);
  }
}

export const countRequests = createMiddleware<AppEnv>(async (c, next) => {
  const started = Date.now();
  await next();
  // Errors have become responses by now (`onError`), so the status is what the client got.
  const group = routeGroup(c.req.path);
  const status = c.res.status;
  const ms = Date.now() - started;
  record(group, status, ms);
  analyticsOf(c.env)?.writeDataPoint({
    indexes: [group],
    blobs: ['request', group, String(status)],
    doubles: [ms],
  });
  let ctx: { waitUntil(promise: Promise<unknown>): void };
  try {
    ctx = c.executionCtx;
  } catch {
    return; // no execution context (called as a plain function): the next request reports
  }
  const wait = lastFlush + FLUSH_WINDOW_MS - Date.now();
  if (wait <= 0) {
    ctx.waitUntil(flushRequests(c.env));
  } else if (!flushDue) {
    flushDue = true;
    ctx.waitUntil(
      new Promise((r) => setTimeout(r, wait)).then(() => {
        flushDue = false;
        return flushRequests(c.env);
      }),
    );
  }
});
