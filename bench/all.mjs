#!/usr/bin/env node
// `npm run bench`: every scenario, one after the other (never two at once: they would share the
// machine's two cores), each as its own process that starts and stops its own servers. Full size
// by default, writing each JSON report to bench/results/<scenario>.json; `--tiny` runs each on a
// tiny load and keeps no files. Other flags (e.g. `--runs 3`) are passed to every scenario.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './lib/common.mjs';

const SCENARIOS = ['fanout', 'burst', 'rooms', 'idle', 'bookings'];

const args = process.argv.slice(2);
let only = SCENARIOS;
let outDir = join(repoRoot, 'bench', 'results');
const passed = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') only = args[++i].split(',');
  else if (args[i] === '--out') outDir = args[++i];
  else passed.push(args[i]);
}
for (const name of only) {
  if (!SCENARIOS.includes(name))
    throw new Error(`unknown scenario ${name}: ${SCENARIOS.join(', ')}`);
}
const tiny = passed.includes('--tiny');
if (!tiny) mkdirSync(outDir, { recursive: true });

const failed = [];
/** bookings.mjs measures one run of each scenario (docs/bookings.md alternates runs by hand). */
const ONE_RUN = new Set(['bookings']);
function flagsFor(name) {
  if (!ONE_RUN.has(name)) return passed;
  const out = [];
  for (let i = 0; i < passed.length; i++) {
    if (passed[i] === '--runs') i++;
    else if (!passed[i].startsWith('--runs=')) out.push(passed[i]);
  }
  return out;
}

for (const name of only) {
  const argv = [join(repoRoot, 'bench', `${name}.mjs`), ...flagsFor(name)];
  if (!tiny) argv.push('--json', join(outDir, `${name}.json`));
  console.log(`\n=== ${name} ===`);
  const started = Date.now();
  const run = spawnSync(process.execPath, argv, { cwd: repoRoot, stdio: 'inherit' });
  const status = run.status ?? 1;
  console.log(
    `=== ${name}: exit ${status} after ${Math.round((Date.now() - started) / 1000)} s ===`,
  );
  if (status !== 0) failed.push(name);
}
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
