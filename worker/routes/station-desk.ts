// A station's live polls, track queue and session analytics over REST (issue 11). Writes go
// through the station's StreamRoom like the owner's socket frames (`poll.create`, `queue.add` …),
// with the Idempotency-Key kept by the room; poll results and ended sessions are read from D1.
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { listPolls } from '../db/engagement';
import type { AppEnv } from '../http/app-env';
import { currentUser, signedIn } from '../http/auth';
import { idempotencyKeyOf } from '../http/idempotency';
import { jsonBody, pathId, query } from '../http/validate';
import { type PollResult, pollCreate, pollVote, queueAdd, queueMove } from '../protocol/stream';
import { station } from '../rooms/stream/kind';
import { answered } from './answers';
import { existingStation, managedStation } from './stations';

const pollsQuery = z.object({
  sessionId: z.string().min(1).max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

async function write(
  c: Context<AppEnv>,
  frame: { type: string; [field: string]: unknown },
  status: 200 | 201,
) {
  const user = currentUser(c);
  const stationId = pathId(c, 'stationId');
  return answered(
    c,
    await station.room(c.env, stationId).request(user, frame, idempotencyKeyOf(c)),
    status,
  );
}

/** A field for CSV: quoted when it holds a comma, quote or line break; formulas defused. */
function csvField(value: string | number | boolean | null): string {
  if (value === null) return '';
  let s = String(value);
  if (/^[=+\-@\t\r]/.test(s) && typeof value === 'string') s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

const CSV_COLUMNS = [
  'poll_id',
  'session_id',
  'question',
  'multiple',
  'opened_at',
  'closed_at',
  'close_reason',
  'option_index',
  'option',
  'option_votes',
  'votes',
  'voters',
  'eligible',
];

/** One row per option of each poll, oldest poll first. */
export function pollsCsv(polls: PollResult[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const p of [...polls].reverse()) {
    p.options.forEach((option, i) => {
      lines.push(
        [
          p.id,
          p.sessionId,
          p.question,
          p.multiple,
          new Date(p.openedAt).toISOString(),
          p.closedAt === null ? null : new Date(p.closedAt).toISOString(),
          p.closeReason,
          i,
          option,
          p.tallies[i] ?? 0,
          p.votes,
          p.voters,
          p.eligible,
        ]
          .map(csvField)
          .join(','),
      );
    });
  }
  return `${lines.join('\r\n')}\r\n`;
}

async function exportCsv(c: Context<AppEnv>, sessionId: string | undefined) {
  const { row } = await managedStation(c);
  const polls = await listPolls(c.env.DB, row.id, { sessionId, limit: 1000 });
  const name = sessionId ? `polls-${row.id}-${sessionId}.csv` : `polls-${row.id}.csv`;
  return c.body(pollsCsv(polls), 200, {
    'content-type': 'text/csv; charset=utf-8',
    'content-disposition': `attachment; filename="${name}"`,
  });
}

export const stationDeskRoutes = new Hono<AppEnv>()
  // ---- polls ----
  .get('/stations/:stationId/polls', query(pollsQuery), async (c) => {
    const stationId = pathId(c, 'stationId');
    await existingStation(c, stationId);
    const { sessionId, limit } = c.req.valid('query');
    const [{ poll }, polls] = await Promise.all([
      station.room(c.env, stationId).currentPoll(),
      listPolls(c.env.DB, stationId, { sessionId, limit }),
    ]);
    const current = poll?.open && (!sessionId || poll.sessionId === sessionId) ? poll : null;
    return c.json({ current, polls });
  })
  .get('/stations/:stationId/polls/export', query(pollsQuery), async (c) =>
    exportCsv(c, c.req.valid('query').sessionId),
  )
  .get('/stations/:stationId/sessions/:sessionId/polls', async (c) => {
    const stationId = pathId(c, 'stationId');
    await existingStation(c, stationId);
    const sessionId = pathId(c, 'sessionId');
    return c.json({ polls: await listPolls(c.env.DB, stationId, { sessionId, limit: 1000 }) });
  })
  .get('/stations/:stationId/sessions/:sessionId/polls/export', async (c) =>
    exportCsv(c, pathId(c, 'sessionId')),
  )
  .post('/stations/:stationId/polls', signedIn, jsonBody(pollCreate), async (c) => {
    await managedStation(c);
    return write(c, { type: 'poll.create', ...c.req.valid('json') }, 201);
  })
  .post('/stations/:stationId/polls/:pollId/votes', signedIn, jsonBody(pollVote), async (c) =>
    write(c, { type: 'poll.vote', pollId: pathId(c, 'pollId'), ...c.req.valid('json') }, 200),
  )
  .post('/stations/:stationId/polls/:pollId/close', signedIn, async (c) => {
    await managedStation(c);
    return write(c, { type: 'poll.close', pollId: pathId(c, 'pollId') }, 200);
  })
  // ---- the track queue ----
  .get('/stations/:stationId/queue', async (c) => {
    const stationId = pathId(c, 'stationId');
    await existingStation(c, stationId);
    return c.json(await station.room(c.env, stationId).trackQueue());
  })
  .post('/stations/:stationId/queue', signedIn, jsonBody(queueAdd), async (c) => {
    await managedStation(c);
    return write(c, { type: 'queue.add', ...c.req.valid('json') }, 201);
  })
  .post('/stations/:stationId/queue/next', signedIn, async (c) => {
    await managedStation(c);
    return write(c, { type: 'queue.next' }, 200);
  })
  .post('/stations/:stationId/queue/:itemId/move', signedIn, jsonBody(queueMove), async (c) => {
    await managedStation(c);
    return write(
      c,
      { type: 'queue.move', itemId: pathId(c, 'itemId'), ...c.req.valid('json') },
      200,
    );
  })
  .delete('/stations/:stationId/queue/:itemId', signedIn, async (c) => {
    await managedStation(c);
    return write(c, { type: 'queue.remove', itemId: pathId(c, 'itemId') }, 200);
  })
  .delete('/stations/:stationId/queue', signedIn, async (c) => {
    await managedStation(c);
    return write(c, { type: 'queue.clear' }, 200);
  })
  // ---- session analytics ----
  .get('/stations/:stationId/sessions/:sessionId/analytics', signedIn, async (c) => {
    const { row, user } = await managedStation(c);
    const sessionId = pathId(c, 'sessionId');
    return c.json(await station.room(c.env, row.id).sessionAnalytics(user, sessionId));
  });
