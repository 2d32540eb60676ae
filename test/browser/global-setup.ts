// Starts one `wrangler dev` serving the built web app for every browser test (`npm test` builds
// it first; DevServer builds it when it is missing), with its own origin allowed, and stops it
// when the run ends.
import type { TestProject } from 'vitest/node';
import { freePort } from '../../scripts/dev-server.mjs';
import { e2eServer } from '../e2e/server';

declare module 'vitest' {
  export interface ProvidedContext {
    appUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const port = await freePort();
  const server = e2eServer('browser', { ALLOWED_ORIGINS: `http://127.0.0.1:${port}` });
  server.port = port;
  await server.start();
  project.provide('appUrl', server.baseUrl);
  return async () => {
    await server.stop();
    await server.dispose();
  };
}
