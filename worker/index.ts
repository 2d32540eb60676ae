// The worker: authenticate, validate, route each channel to its Durable Object. No state here.
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { allowedOrigins } from './channel/origins';
import { pruneExpiredIdempotencyKeys } from './db/idempotency';
import type { AppEnv } from './http/app-env';
import { authenticate, writeOrigin } from './http/auth';
import { notFound, onError } from './http/errors';
import { writeLimit } from './http/rate-limit';
import { countRequests } from './http/request-metrics';
import { consumeNotifications, type NotificationMessage } from './rooms/user/kind';
import { adminRoutes } from './routes/admin';
import { authRoutes } from './routes/auth';
import { broadcastRoutes, broadcastSockets } from './routes/broadcast';
import { commentRoutes, commentSockets } from './routes/comments';
import { eventRoutes, eventSockets } from './routes/events';
import { healthRoutes } from './routes/health';
import { meRoutes, meSockets } from './routes/me';
import { adminMetricsRoutes, metricsRoutes } from './routes/metrics';
import { serverRoutes } from './routes/server';
import { stationDeskRoutes } from './routes/station-desk';
import { stationRoutes, stationSockets } from './routes/stations';
import { storyRoutes, storySockets } from './routes/stories';

const api = new Hono<AppEnv>()
  .route('/', authRoutes)
  .route('/', commentRoutes)
  .route('/', eventRoutes)
  .route('/', stationRoutes)
  .route('/', stationDeskRoutes)
  .route('/', storyRoutes)
  .route('/', meRoutes)
  .route('/', broadcastRoutes)
  .route('/', adminRoutes)
  .route('/', adminMetricsRoutes);

const sockets = new Hono<AppEnv>()
  .route('/', broadcastSockets)
  .route('/', commentSockets)
  .route('/', eventSockets)
  .route('/', meSockets)
  .route('/', stationSockets)
  .route('/', storySockets);

const app = new Hono<AppEnv>()
  .use(countRequests)
  .use(
    '/api/*',
    cors({
      origin: (origin, c) => {
        const allowed = allowedOrigins(c.env);
        return allowed.includes('*') || allowed.includes(origin) ? origin : null;
      },
      allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key'],
      // Lets browser clients tell a replayed answer from a fresh one, and when to retry.
      exposeHeaders: ['Idempotent-Replayed', 'Retry-After'],
      maxAge: 600,
    }),
  )
  .route('/', healthRoutes)
  .route('/', metricsRoutes)
  // Trusted backends: the server key, not a user's token (docs/server-api.md).
  .route('/server/v1', serverRoutes)
  .use('/api/*', writeOrigin)
  .use('/api/*', authenticate)
  .use('/api/*', writeLimit)
  .use('/ws/*', authenticate)
  .use('/ws', authenticate)
  .route('/api', api)
  .route('/ws', sockets);

app.onError(onError);
app.notFound(notFound);

export type AppType = typeof app;

export default {
  fetch: app.fetch,
  /** Cron (wrangler.toml `[triggers]`): forgets Idempotency-Key answers older than 24 h. */
  async scheduled(controller, env) {
    const deleted = await pruneExpiredIdempotencyKeys(env.DB, controller.scheduledTime);
    console.log(`pruned ${deleted} idempotency keys`);
  },
  /** The notification queue: fan-outs to many users, off every request path (docs/notifications.md). */
  queue: (batch, env) => consumeNotifications(batch, env),
} satisfies ExportedHandler<Env, NotificationMessage>;

export { MetricsHub } from './channel/metrics-hub';
export { ConnectionQuota } from './channel/quota';
export { BroadcastRelay } from './rooms/broadcast/BroadcastRelay';
export { BroadcastRoot } from './rooms/broadcast/BroadcastRoot';
export { CommentRoom } from './rooms/comments/CommentRoom';
export { EventRoom } from './rooms/event/EventRoom';
export { KeyClaims } from './rooms/event/KeyClaims';
export { Lobby } from './rooms/lobby/Lobby';
export { PlayRoom } from './rooms/play/PlayRoom';
export { PresenceShard } from './rooms/presence/PresenceShard';
export { StoryRoom } from './rooms/story/StoryRoom';
export { StreamRoom } from './rooms/stream/StreamRoom';
export { UserChannel } from './rooms/user/UserChannel';
