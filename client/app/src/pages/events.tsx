// Events: the list and an event's page with seats left moving live, booking that is safe to
// click twice and to retry (one Idempotency-Key per intent), organisers' create and edit forms,
// and my bookings and tickets with cancel and transfer.
import type {
  BookingCreatedResponse,
  BookingView,
  EventRoomSnapshot,
  EventServerFrame,
  EventView,
  TicketView,
} from '@wavecast/sdk';
import { useChannel, useChannelState } from '@wavecast/sdk/react';
import { type FormEvent, useState } from 'react';
import { Link, navigate } from '../router';
import { client, newKey, useSession } from '../session';
import { describe, Empty, ErrorBox, formatTime, Loading, useAction, useApi } from '../ui/states';
import { SignInFirst } from './auth';

function reduce(s: EventRoomSnapshot, f: EventServerFrame): EventRoomSnapshot {
  switch (f.type) {
    case 'booking.created':
    case 'booking.cancelled':
    case 'seats.updated':
      return {
        ...s,
        capacity: f.capacity,
        bookedSeats: f.bookedSeats,
        availableSeats: f.availableSeats,
      };
    case 'event.updated':
      return {
        ...s,
        event: f.event,
        capacity: f.event.capacity,
        availableSeats: f.event.availableSeats,
      };
    case 'presence.joined':
    case 'presence.left':
    case 'presence.counts':
      return { ...s, watchers: { ...s.watchers, users: f.users, connections: f.connections } };
    default:
      return s;
  }
}

/** An event's seats and record, live from its channel. */
function useLiveEvent(eventId: string, userId: string | null) {
  const { channel } = useChannel<EventServerFrame, EventRoomSnapshot>(
    (c) => c.event(eventId),
    [eventId, userId],
  );
  return { channel, snap: useChannelState(channel, (s) => s, reduce) };
}

export function SeatsLeft(props: { available: number; capacity: number }) {
  return (
    <span className={props.available === 0 ? 'seats sold-out' : 'seats'}>
      {props.available === 0 ? (
        'Sold out'
      ) : (
        <>
          <strong data-testid="seats-left">{props.available}</strong> of {props.capacity} seats left
        </>
      )}
    </span>
  );
}

function EventCard(props: { event: EventView; userId: string | null }) {
  const { snap } = useLiveEvent(props.event.id, props.userId);
  const e = snap?.event ?? props.event;
  return (
    <li className="card">
      <Link to={`/events/${e.id}`}>
        <h2>{e.title}</h2>
      </Link>
      <p className="muted">
        {e.venue} · {formatTime(e.startsAt)}
      </p>
      <SeatsLeft
        available={snap?.availableSeats ?? e.availableSeats}
        capacity={snap?.capacity ?? e.capacity}
      />
    </li>
  );
}

export function EventsList() {
  const session = useSession();
  const list = useApi(
    () => client.request<{ events: EventView[] }>('GET', '/api/events?limit=24'),
    [session?.user.id],
  );
  return (
    <>
      <h1>Events</h1>
      {list.loading ? (
        <Loading />
      ) : list.error ? (
        <ErrorBox error={list.error} onRetry={list.reload} />
      ) : list.data?.events.length === 0 ? (
        <Empty>No upcoming events.</Empty>
      ) : (
        <ul className="cards">
          {list.data?.events.map((e) => (
            <EventCard key={e.id} event={e} userId={session?.user.id ?? null} />
          ))}
        </ul>
      )}
    </>
  );
}

export function EventPage(props: { id: string }) {
  const session = useSession();
  const { channel, snap } = useLiveEvent(props.id, session?.user.id ?? null);
  if (channel?.terminal) {
    return <ErrorBox error={new Error('This event is private or no longer exists.')} />;
  }
  if (!snap) return <Loading label="Loading the event…" />;
  const { event } = snap;
  const mine = session && (session.user.id === event.organiserId || session.user.role === 'admin');
  return (
    <article>
      <h1>{event.title}</h1>
      <p className="muted">
        {event.venue} · {formatTime(event.startsAt)} · {event.visibility}
      </p>
      <p className="big">
        <SeatsLeft available={snap.availableSeats} capacity={snap.capacity} />
      </p>
      <p className="muted">
        <span data-testid="watchers">{snap.watchers.connections}</span> watching now
      </p>
      {event.description && <p>{event.description}</p>}
      {session ? (
        <BookingForm eventId={event.id} soldOut={snap.availableSeats === 0} />
      ) : (
        <p>
          <Link to="/signin">Sign in</Link> to book.
        </p>
      )}
      {mine && <EventForm event={event} />}
    </article>
  );
}

function BookingForm(props: { eventId: string; soldOut: boolean }) {
  const [quantity, setQuantity] = useState(1);
  // One key per intent: a double click and a retry after a network error carry the same key, so
  // the server books once and answers the retry with the first result.
  const [key, setKey] = useState(newKey);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [booked, setBooked] = useState<BookingView | null>(null);
  const book = async () => {
    if (busy) return;
    setBusy(true);
    setError(null);
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await client.request<BookingCreatedResponse>(
          'POST',
          '/api/bookings',
          { eventId: props.eventId, quantity },
          { 'idempotency-key': key },
        );
        setBooked(res.booking);
        setKey(newKey());
        break;
      } catch (err) {
        // A network failure: the booking may or may not have happened; the same key finds out.
        if (err instanceof TypeError && attempt < 2) continue;
        setError(describe(err));
        break;
      }
    }
    setBusy(false);
  };
  return (
    <section className="panel" aria-label="Book">
      <h2>Book seats</h2>
      <div className="inline wrap">
        <label>
          Seats
          <input
            type="number"
            min={1}
            max={10}
            value={quantity}
            onChange={(e) => {
              setQuantity(Math.max(1, Math.min(10, Number(e.target.value) || 1)));
              setKey(newKey());
            }}
          />
        </label>
        <button type="button" className="primary" disabled={busy || props.soldOut} onClick={book}>
          {busy ? 'Booking…' : props.soldOut ? 'Sold out' : 'Book'}
        </button>
      </div>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {booked && (
        <p role="status" data-testid="booking-confirmed">
          Booked {booked.quantity} seat{booked.quantity === 1 ? '' : 's'}.{' '}
          <Link to="/tickets">See your tickets</Link>
        </p>
      )}
    </section>
  );
}

function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export function EventForm(props: { event?: EventView }) {
  const session = useSession();
  const [saved, setSaved] = useState(false);
  const act = useAction();
  const [key, setKey] = useState(newKey);
  if (!session) return <SignInFirst what="to create events" />;
  const editing = props.event;
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const body = {
      title: String(f.get('title')),
      venue: String(f.get('venue')),
      description: String(f.get('description') ?? ''),
      startsAt: new Date(String(f.get('startsAt'))).getTime(),
      capacity: Number(f.get('capacity')),
      visibility: String(f.get('visibility')),
    };
    setSaved(false);
    await act.run(async () => {
      if (editing) {
        await client.request('PATCH', `/api/events/${editing.id}`, body, {
          'idempotency-key': key,
        });
        setKey(newKey());
        setSaved(true);
      } else {
        const res = await client.request<{ event: EventView }>('POST', '/api/events', body, {
          'idempotency-key': key,
        });
        navigate(`/events/${res.event.id}`);
      }
    });
  };
  const v = editing;
  return (
    <section className={editing ? 'panel' : 'narrow'}>
      {editing ? <h2>Edit event</h2> : <h1>New event</h1>}
      <form onSubmit={submit} className="stack">
        <label>
          Title
          <input name="title" required maxLength={200} defaultValue={v?.title} />
        </label>
        <label>
          Venue
          <input name="venue" required maxLength={200} defaultValue={v?.venue} />
        </label>
        <label>
          Starts at
          <input
            name="startsAt"
            type="datetime-local"
            required
            defaultValue={toLocalInput(v?.startsAt ?? Date.now() + 7 * 86_400_000)}
          />
        </label>
        <label>
          Capacity
          <input name="capacity" type="number" min={1} required defaultValue={v?.capacity ?? 100} />
        </label>
        <label>
          Visibility
          <select name="visibility" defaultValue={v?.visibility ?? 'public'}>
            <option value="public">Public</option>
            <option value="private">Private</option>
          </select>
        </label>
        <label>
          Description
          <textarea name="description" rows={3} maxLength={5000} defaultValue={v?.description} />
        </label>
        {act.shown}
        {saved && <p role="status">Saved.</p>}
        <button type="submit" className="primary" disabled={act.busy}>
          {editing ? 'Save changes' : 'Create event'}
        </button>
      </form>
    </section>
  );
}

interface HeldTicket extends TicketView {
  event: EventView | null;
}

export function Tickets() {
  const session = useSession();
  const bookings = useApi(
    () => client.request<{ bookings: BookingView[] }>('GET', '/api/me/bookings'),
    [session?.user.id],
  );
  const tickets = useApi(
    () => client.request<{ tickets: HeldTicket[] }>('GET', '/api/me/tickets'),
    [session?.user.id],
  );
  const [notice, setNotice] = useState<string | null>(null);
  if (!session) return <SignInFirst what="to see your tickets" />;
  const reload = () => {
    bookings.reload();
    tickets.reload();
  };
  const cancel = async (b: BookingView) => {
    try {
      await client.request('DELETE', `/api/bookings/${b.id}`, undefined, {
        'idempotency-key': `cancel-${b.id}`,
      });
      setNotice('Booking cancelled.');
    } catch (err) {
      setNotice(describe(err));
    }
    reload();
  };
  const transfer = async (t: TicketView, toUserId: string) => {
    try {
      await client.request(
        'POST',
        `/api/tickets/${t.id}/transfer`,
        { toUserId },
        { 'idempotency-key': newKey() },
      );
      setNotice('Ticket transferred.');
    } catch (err) {
      setNotice(describe(err));
    }
    reload();
  };
  const eventTitle = new Map(
    (tickets.data?.tickets ?? []).flatMap((t) => (t.event ? [[t.eventId, t.event.title]] : [])),
  );
  return (
    <>
      <h1>My tickets</h1>
      {notice && <p role="status">{notice}</p>}
      <h2>Tickets I hold</h2>
      {tickets.loading ? (
        <Loading />
      ) : tickets.error ? (
        <ErrorBox error={tickets.error} onRetry={reload} />
      ) : tickets.data?.tickets.filter((t) => t.status === 'valid').length === 0 ? (
        <Empty>No tickets yet. Find an event to book.</Empty>
      ) : (
        <ul className="list" data-testid="tickets">
          {tickets.data?.tickets
            .filter((t) => t.status === 'valid')
            .map((t) => (
              <li key={t.id}>
                <Link to={`/events/${t.eventId}`}>{t.event?.title ?? 'Event'}</Link>{' '}
                <code className="muted">{t.id.slice(-8)}</code>
                <TransferForm onTransfer={(to) => transfer(t, to)} />
              </li>
            ))}
        </ul>
      )}
      <h2>My bookings</h2>
      {bookings.loading ? (
        <Loading />
      ) : bookings.error ? (
        <ErrorBox error={bookings.error} onRetry={reload} />
      ) : bookings.data?.bookings.length === 0 ? (
        <Empty>No bookings yet.</Empty>
      ) : (
        <ul className="list" data-testid="bookings">
          {bookings.data?.bookings.map((b) => (
            <li key={b.id}>
              <Link to={`/events/${b.eventId}`}>{eventTitle.get(b.eventId) ?? 'Event'}</Link> ·{' '}
              {b.quantity} seat{b.quantity === 1 ? '' : 's'} · {b.status}{' '}
              {b.status === 'confirmed' && (
                <button type="button" onClick={() => cancel(b)}>
                  Cancel booking
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function TransferForm(props: { onTransfer: (toUserId: string) => void }) {
  const [to, setTo] = useState('');
  return (
    <form
      className="inline"
      onSubmit={(e) => {
        e.preventDefault();
        if (to.trim()) props.onTransfer(to.trim());
      }}
    >
      <label>
        <span className="sr-only">Recipient's user id</span>
        <input
          value={to}
          onChange={(e) => setTo(e.target.value)}
          placeholder="Recipient's user id"
        />
      </label>
      <button type="submit">Transfer</button>
    </form>
  );
}
