// `GET /health` for load balancers: 200 `{"status":"healthy"}`, or 503 `{"status":"degraded",
// "reasons":[…]}` when D1 does not answer, the metrics hub does not answer, or failures passed
// HEALTH_MAX_FAILURE_RATIO of what was handled over the last minutes. One D1 round trip and one
// small RPC, each bounded by a timeout, so it can be called every few seconds.
import { Hono } from 'hono';
import { metricsHub } from '../channel/metrics';
import { pingDatabase } from '../db/health';
import type { AppEnv } from '../http/app-env';
import { flushRequests } from '../http/request-metrics';

export const HEALTH_TIMEOUT_MS = 1500;
/** Below this many frames and requests in the window, a ratio says too little to act on. */
export const HEALTH_MIN_HANDLED = 20;
const DEFAULT_MAX_FAILURE_RATIO = 0.05;

export interface HealthReason {
  check: 'd1' | 'metrics' | 'failures';
  message: string;
}

export const healthRoutes = new Hono<AppEnv>().get('/health', async (c) => {
  const reasons = await checkHealth(c.env);
  if (reasons.length === 0)
    return c.json({ status: 'healthy' }, 200, { 'cache-control': 'no-store' });
  return c.json({ status: 'degraded', reasons }, 503, { 'cache-control': 'no-store' });
});

export async function checkHealth(env: Env): Promise<HealthReason[]> {
  const [d1, window] = await Promise.allSettled([
    within(pingDatabase(env.DB), 'D1'),
    within(
      flushRequests(env).then(() => metricsHub(env).health()),
      'the metrics hub',
    ),
  ]);
  const reasons: HealthReason[] = [];
  if (d1.status === 'rejected') {
    reasons.push({ check: 'd1', message: describe(d1.reason, 'D1 did not answer') });
  }
  if (window.status === 'rejected') {
    const message = describe(window.reason, 'the metrics hub did not answer');
    reasons.push({ check: 'metrics', message });
  } else {
    const { handled, failures, minutes } = window.value;
    const limit = maxFailureRatio(env);
    if (handled >= HEALTH_MIN_HANDLED && failures / handled > limit) {
      const percent = ((failures / handled) * 100).toFixed(1);
      reasons.push({
        check: 'failures',
        message: `${failures} of ${handled} frames and requests failed over the last ${minutes} minutes (${percent} %, limit ${limit * 100} %)`,
      });
    }
  }
  return reasons;
}

function maxFailureRatio(env: Env): number {
  const value = Number((env as Partial<Env>).HEALTH_MAX_FAILURE_RATIO);
  return Number.isFinite(value) && value > 0 && value < 1 ? value : DEFAULT_MAX_FAILURE_RATIO;
}

class Timeout extends Error {}

function within<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Timeout(`${what} did not answer within ${HEALTH_TIMEOUT_MS} ms`)),
      HEALTH_TIMEOUT_MS,
    );
  });
  return Promise.race([work, timeout]).finally(() => timer && clearTimeout(timer));
}

/** The answer is public: a timeout is described, any other failure only logged. */
function describe(err: unknown, generic: string): string {
  if (err instanceof Timeout) return err.message;
  console.error(`health: ${generic}:`, err);
  return `${generic} (see the worker's log)`;
}
