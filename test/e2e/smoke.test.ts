import { describe, expect, it } from 'vitest';
import { api, connect, register } from './helpers';

describe('wrangler dev', () => {
  it('serves health, accounts and a comment socket', async () => {
    expect((await api('/health')).status).toBe(200);
    const user = await register();
    const socket = await connect('/ws/comments/smoke', { token: user.token });
    const welcome = await socket.next<{ user: { id: string } }>('welcome');
    expect(welcome.user.id).toBe(user.id);
    socket.close();
    await socket.closed();
  });
});
