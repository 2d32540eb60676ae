// The benchmarks still run: each one in its `--tiny` form, as a child process that starts its
// own servers, exits 0 and prints its report. No timing is asserted: benchmarks are not tests.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

function runBench(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(
      process.execPath,
      [script, '--tiny'],
      { cwd: root, timeout: 150_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        ok({ code, stdout, stderr });
      },
    );
  });
}

/** The JSON report every benchmark prints after its table. */
function reportOf(stdout: string): Record<string, unknown> {
  const at = stdout.indexOf('\nJSON:\n');
  if (at < 0) throw new Error(`no JSON report in:\n${stdout}`);
  return JSON.parse(stdout.slice(at + '\nJSON:\n'.length)) as Record<string, unknown>;
}

// Both at once: each starts its own `wrangler dev`, so they do not share anything.
describe.concurrent('benchmarks in their tiny form', () => {
  it('bench/rooms.mjs measures Wavecast and the bare baseline and prints both', async ({
    expect,
  }) => {
    const run = await runBench('bench/rooms.mjs');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('deliveries/s');
    const report = reportOf(run.stdout) as {
      summary: { wavecast: { deliveriesPerSecond: number }; bare: { deliveriesPerSecond: number } };
    };
    expect(report.summary.wavecast.deliveriesPerSecond).toBeGreaterThan(0);
    expect(report.summary.bare.deliveriesPerSecond).toBeGreaterThan(0);
  }, 160_000);

  it('bench/bookings.mjs books one event and its watchers see every booking in order', async ({
    expect,
  }) => {
    const run = await runBench('bench/bookings.mjs');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('confirmed/s');
    const report = reportOf(run.stdout) as {
      scenarios: { confirmedPerSecond: number; watchers: { sawEveryBookingInOrder: boolean } }[];
    };
    expect(report.scenarios.length).toBeGreaterThan(0);
    for (const s of report.scenarios) {
      expect(s.confirmedPerSecond).toBeGreaterThan(0);
      expect(s.watchers.sawEveryBookingInOrder).toBe(true);
    }
  }, 160_000);

  it('bench/idle.mjs holds its sockets and prints the CPU per minute', async ({ expect }) => {
    const run = await runBench('bench/idle.mjs');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('wake-ups');
    const report = reportOf(run.stdout) as { minutes: unknown[]; socketsOpenAtEnd: number };
    expect(report.minutes.length).toBeGreaterThan(0);
    expect(report.socketsOpenAtEnd).toBe(20);
  }, 160_000);
});
