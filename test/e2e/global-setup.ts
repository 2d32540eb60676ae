// Starts the suite's `wrangler dev` (local D1 with every migration applied, a fresh state
// folder) on a free loopback port, waits until it answers, and stops it when the run ends.
import type { TestProject } from 'vitest/node';
import { E2E_ADMIN, E2E_SECRET, e2eServer } from './server';

export { E2E_ADMIN, E2E_SECRET };

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string;
    /** Everything `wrangler dev` printed, so tests can check what reaches the logs. */
    serverLog: string;
  }
}

export default async function setup(project: TestProject) {
  const server = e2eServer('state');
  await server.start();
  project.provide('baseUrl', server.baseUrl);
  project.provide('serverLog', server.logFile);

  return async () => {
    await server.stop();
    if (process.env.E2E_LOG) console.log(server.output);
    await server.dispose();
  };
}
