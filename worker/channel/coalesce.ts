// A coalesced broadcast: a value that changes often (listener counts, the lobby's directory)
// is sent at most once per window. The first change after a quiet spell goes out at once; the
// changes that follow within the window are folded into one send at its end. Runs on the
// room's alarm, so a held-back send survives hibernation.
import type { ChannelKit } from './room';

export class Coalesced {
  #lastSent = 0;

  constructor(
    private readonly kit: ChannelKit,
    private readonly name: string,
    private readonly windowMs: number,
    private readonly send: () => void | Promise<void>,
  ) {
    kit.task(name, () => this.flush());
  }

  /** The value changed: send now if the window allows, else once it is over. */
  touch(): void {
    this.kit.scheduleSoon(this.name, Math.max(Date.now(), this.#lastSent + this.windowMs));
  }

  /** Sends now (also what the alarm runs). */
  async flush(): Promise<void> {
    this.#lastSent = Date.now();
    await this.send();
  }

  /** When it last sent (0 since the object woke). */
  get lastSent(): number {
    return this.#lastSent;
  }
}
