// The benchmarks still run: each one in its `--tiny` form, as a child process that starts its
// own servers (Wavecast and its baselines), exits 0 and prints its report. No timing is
// asserted: benchmarks are not tests. Only what must hold at any speed is checked (every target
// delivered, every socket stayed open, every watcher saw every booking in order).
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const TARGETS = ['wavecast', 'bare', 'socketio'] as const;

// Two at a time: each starts its own servers, and the machine has two cores.
let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((ok) => waiting.push(ok));
  running += 1;
  try {
    return await fn();
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

function runBench(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return slot(
    () =>
      new Promise((ok) => {
        execFile(
          process.execPath,
          [script, '--tiny'],
          { cwd: root, timeout: 280_000, maxBuffer: 16 * 1024 * 1024 },
          (err, stdout, stderr) => {
            const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
            ok({ code, stdout, stderr });
          },
        );
      }),
  );
}

/** The JSON report every benchmark prints after its table. */
function reportOf(stdout: string): Record<string, unknown> {
  const at = stdout.indexOf('\nJSON:\n');
  if (at < 0) throw new Error(`no JSON report in:\n${stdout}`);
  return JSON.parse(stdout.slice(at + '\nJSON:\n'.length)) as Record<string, unknown>;
}

type ChannelReport = {
  summary: Record<(typeof TARGETS)[number], { deliveriesPerSecond: number; lost: number }>;
};

const TIMEOUT = 600_000;

describe.concurrent('benchmarks in their tiny form', () => {
  for (const scenario of ['fanout', 'burst', 'rooms']) {
    it(
      `bench/${scenario}.mjs measures Wavecast, the bare DO and Socket.IO and prints all three`,
      async ({ expect }) => {
        const run = await runBench(`bench/${scenario}.mjs`);
        expect(run.code, run.stderr).toBe(0);
        expect(run.stdout).toContain('deliveries/s');
        expect(run.stdout).toContain('Wavecast/Socket.IO');
        const report = reportOf(run.stdout) as ChannelReport;
        for (const target of TARGETS) {
          expect(report.summary[target].deliveriesPerSecond, target).toBeGreaterThan(0);
          expect(report.summary[target].lost, target).toBe(0);
        }
      },
      TIMEOUT,
    );
  }

  it(
    'bench/idle.mjs holds idle sockets on every target and prints connects/s and memory',
    async ({ expect }) => {
      const run = await runBench('bench/idle.mjs');
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('server KiB per connection');
      const report = reportOf(run.stdout) as {
        summary: Record<string, { socketsOpenAtEnd: number; connectsPerSecond: number }>;
      };
      for (const target of TARGETS) {
        // 20 sockets and the first one that opened the channel.
        expect(report.summary[target]?.socketsOpenAtEnd, target).toBe(21);
        expect(report.summary[target]?.connectsPerSecond, target).toBeGreaterThan(0);
      }
    },
    TIMEOUT,
  );

  it(
    'bench/bookings.mjs books on Wavecast and the Node baseline; watchers see every booking in order',
    async ({ expect }) => {
      const run = await runBench('bench/bookings.mjs');
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('confirmed/s');
      type Scenario = { confirmedPerSecond: number; watchers: { sawEveryBookingInOrder: boolean } };
      const report = reportOf(run.stdout) as Record<string, { scenarios: Scenario[] }>;
      for (const target of ['wavecast', 'node']) {
        expect(report[target]?.scenarios.length, target).toBeGreaterThan(0);
        for (const s of report[target]?.scenarios ?? []) {
          expect(s.confirmedPerSecond, target).toBeGreaterThan(0);
          expect(s.watchers.sawEveryBookingInOrder, target).toBe(true);
        }
      }
    },
    TIMEOUT,
  );
});
