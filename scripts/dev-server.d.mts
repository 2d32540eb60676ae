// Types for dev-server.mjs (plain ESM so the benchmarks run it without a build).
export declare const repoRoot: string;
export declare function freePort(): Promise<number>;
/** Builds the SDK and the web app (`npm run build`) unless client/app/dist is there already. */
export declare function ensureAppBuilt(): void;
/** Live (non-zombie) processes whose process group is `pgid`, from /proc. */
export declare function groupMembers(pgid: number): number[];
/** CPU seconds (user + system) used so far by every live process of the group. */
export declare function groupCpuSeconds(pgid: number): number;
/** The same, summed by command name (e.g. `workerd`). */
export declare function groupCpuByCommand(pgid: number): Record<string, number>;

export interface DevServerOptions {
  /** wrangler config, relative to the repository root (default `wrangler.toml`). */
  config?: string;
  /** `--var NAME:VALUE` pairs. */
  vars?: Record<string, string>;
  /** Apply the D1 migrations to the fresh state before the first start (default true). */
  migrate?: boolean;
  /** Names the state folder and the log under `.e2e/`. */
  name?: string;
  /** Where everything the server prints is appended. */
  logFile?: string;
}

export declare class DevServer {
  constructor(options?: DevServerOptions);
  readonly state: string;
  readonly logFile: string;
  /** Everything the server printed, across restarts. */
  readonly output: string;
  readonly port: number;
  /** Process group id of the current (or last) run; 0 before the first start. */
  readonly pgid: number;
  readonly baseUrl: string;
  readonly wsBase: string;
  readonly running: boolean;
  cpuSeconds(): number;
  cpuByCommand(): Record<string, number>;
  /** A fresh state folder with the migrations applied; `start()` calls it the first time. */
  prepare(): void;
  /** Starts on the persisted state (same port when free) and waits for `/health`. */
  start(options?: { timeoutMs?: number }): Promise<void>;
  /** SIGKILL to the whole process group — a crash — and waits until every process is gone. */
  kill(options?: { timeoutMs?: number }): Promise<void>;
  /** SIGTERM to the group, SIGKILL after `graceMs`; waits until every process is gone. */
  stop(options?: { graceMs?: number }): Promise<void>;
  /** Stops and removes the state folder (and the log unless `keepLog`). */
  dispose(options?: { keepLog?: boolean }): Promise<void>;
}
