// What a user's channel tells the presence shards (docs/presence.md): each time the user's
// device count goes 0→1 or 1→0, one report with the next version from the channel's own storage
// (so versions only grow, across restarts too). Sent off the socket's path, retried a few times.
import type { SequenceLog } from '../../channel/log';
import { reportPresence } from './kind';

const VERSION = 'presence.version';
const RETRIES = 3;

export class PresenceFeed {
  constructor(
    private readonly env: Env,
    private readonly log: SequenceLog,
    private readonly userId: string,
    private readonly keepAlive: (p: Promise<unknown>) => void,
  ) {}

  /** The user's device count went 0→1 (`true`) or 1→0 (`false`). */
  changed(online: boolean, at = Date.now()): void {
    const version = Number(this.log.getMeta(VERSION) ?? '0') + 1;
    this.log.setMeta(VERSION, String(version));
    this.keepAlive(this.#send(online, version, at));
  }

  async #send(online: boolean, version: number, at: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await reportPresence(this.env, this.userId, online, version, at);
        return;
      } catch (err) {
        if (attempt >= RETRIES) {
          console.error(`presence report for ${this.userId} failed`, err);
          return;
        }
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }
}
