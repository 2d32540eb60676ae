// The worker: authenticate, validate, route each channel to its Durable Object. No state here.
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { allowedOrigins } from './channel/origins';
import type { AppEnv } from './http/app-env';
import { authenticate } from './http/auth';
import { notFound, onError } from './http/errors';
import { adminRoutes } from './routes/admin';
import { authRoutes } from './routes/auth';
import { commentRoutes, commentSockets } from './routes/comments';
import { eventRoutes, eventSockets } from './routes/events';
import { stationRoutes, stationSockets } from './routes/stations';

const api = new Hono<AppEnv>()
  .route('/', authRoutes)
  .route('/', commentRoutes)
  .route('/', eventRoutes)
  .route('/', stationRoutes)
  .route('/', adminRoutes);

const sockets = new Hono<AppEnv>()
  .route('/', commentSockets)
  .route('/', eventSockets)
  .route('/', stationSockets);

const app = new Hono<AppEnv>()
  .use(
    '/api/*',
    cors({
      origin: (origin, c) => {
        const allowed = allowedOrigins(c.env);
        return allowed.includes('*') || allowed.includes(origin) ? origin : null;
      },
      allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key'],
      // Lets browser clients tell a replayed answer from a fresh one (docs/bookings.md).
      exposeHeaders: ['Idempotent-Replayed'],
      maxAge: 600,
    }),
  )
  .get('/health', (c) => c.json({ ok: true, service: 'wavecast' }))
  .use('/api/*', authenticate)
  .use('/ws/*', authenticate)
  .use('/ws', authenticate)
  .route('/api', api)
  .route('/ws', sockets);

app.onError(onError);
app.notFound(notFound);

export type AppType = typeof app;
export default app;

export { ConnectionQuota } from './channel/quota';
export { CommentRoom } from './rooms/comments/CommentRoom';
export { EventRoom } from './rooms/event/EventRoom';
export { Lobby } from './rooms/lobby/Lobby';
export { StreamRoom } from './rooms/stream/StreamRoom';
