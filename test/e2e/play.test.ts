// A five-player session against `wrangler dev`, through the SDK: a story of four choices played
// to its end, one player dropping and rejoining, one vote decided by the deadline; every player
// saw the same passages in the same order, and the path in D1 matches.
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type StoryGraph, WavecastClient } from '../../client/sdk';
import { PlaySession, StoriesApi } from '../../client/sdk/stories';
import { baseUrl, register } from './helpers';

/** Four choice points, two ways through each, then one of two endings. */
const graph: StoryGraph = {
  start: 'gate',
  passages: [
    {
      id: 'gate',
      text: 'A gate.',
      choices: [
        { id: 'in', label: 'Enter', to: 'hall' },
        { id: 'round', label: 'Go round', to: 'yard' },
      ],
    },
    {
      id: 'hall',
      text: 'A hall.',
      choices: [
        { id: 'up', label: 'Upstairs', to: 'tower' },
        { id: 'down', label: 'Cellar', to: 'tower' },
      ],
    },
    {
      id: 'yard',
      text: 'A yard.',
      choices: [
        { id: 'well', label: 'The well', to: 'tower' },
        { id: 'barn', label: 'The barn', to: 'tower' },
      ],
    },
    {
      id: 'tower',
      text: 'A tower.',
      choices: [
        { id: 'climb', label: 'Climb', to: 'roof' },
        { id: 'rest', label: 'Rest', to: 'roof' },
      ],
    },
    {
      id: 'roof',
      text: 'The roof.',
      choices: [
        { id: 'jump', label: 'Jump', to: 'flight' },
        { id: 'stay', label: 'Stay', to: 'dawn' },
      ],
    },
    { id: 'flight', text: 'You fly. The end.', choices: [] },
    { id: 'dawn', text: 'Dawn comes. The end.', choices: [] },
  ],
};

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a multiplayer story session against wrangler dev', () => {
  it('five players play a story of four choices to its end, one dropping and rejoining', async () => {
    const users = await Promise.all(
      ['Host', 'P2', 'P3', 'P4', 'P5'].map((n) => register('listener', n)),
    );
    const clients = users.map(
      (u) => new WavecastClient({ baseUrl: baseUrl(), token: u.token, WebSocket }),
    );
    const host = clients[0] as WavecastClient;
    const api = new StoriesApi(host);
    const { story } = await api.create({ title: 'The tower', graph });
    await api.publish(story.id);
    const { session } = await api.openSession(story.id, { maxPlayers: 5, choiceSeconds: 3 });

    const players = clients.map((c) => new PlaySession(c, session.id));
    await until(() => players.every((p) => p.info !== null), 'every welcome');
    // The last one in found every seat taken (the host's was reserved at opening).
    expect(Math.max(...players.map((p) => p.channel.snapshot?.seats ?? 0))).toBe(5);
    await players[0]?.start();

    const dropper = players[4] as PlaySession;
    const others = players.slice(0, 4);
    const welcomes: boolean[] = [];
    dropper.on('welcome', (w) => welcomes.push(w.recovery.recovered));
    const votes = ['round', 'barn', 'climb', 'stay'];
    for (let step = 0; step < 4; step++) {
      await until(() => players.every((p) => p.step === step || p === dropper), `step ${step}`);
      const choice = votes[step] as string;
      if (step === 1) {
        // The fifth player drops before voting; the four left decide without waiting.
        dropper.channel.socket.close(1000, 'dropped');
        await until(() => dropper.channel.state !== 'open', 'the drop');
        await Promise.all(others.map((p) => p.vote(choice)));
        continue;
      }
      if (step === 2) {
        dropper.channel.socket.reconnect();
        await until(() => dropper.step === 2, 'the rejoin');
        // One player stays silent: the deadline (3 s, an alarm) decides.
        await Promise.all(players.slice(0, 4).map((p) => p.vote(choice)));
        continue;
      }
      await Promise.all(players.map((p) => p.vote(choice)));
    }
    await until(() => players.every((p) => p.ended !== null), 'the ending', 20_000);

    const expected = ['gate', 'yard', 'tower', 'roof', 'dawn'];
    for (const p of players) expect(p.path.map((x) => x.id)).toEqual(expected);
    expect(welcomes).toEqual([true]);
    const decided = others[0] as PlaySession;
    expect([...decided.chosen.values()].map((c) => [c.choiceId, c.reason])).toEqual([
      ['round', 'all_voted'],
      ['barn', 'all_voted'],
      ['climb', 'deadline'],
      ['stay', 'all_voted'],
    ]);

    // The path in D1, once the session's outbox has written it.
    let record = (await api.session(session.id)).session;
    const deadline = Date.now() + 10_000;
    while (record.status !== 'ended' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      record = (await api.session(session.id)).session;
    }
    expect(record.status).toBe('ended');
    expect(record.path.map((p) => p.passageId)).toEqual(expected);
    expect(record.path.map((p) => p.choiceId)).toEqual([...votes, null]);
    expect(record.path[2]?.tallies).toEqual({ climb: 4, rest: 0 });
    for (const p of players) p.close();
  }, 90_000);
});
