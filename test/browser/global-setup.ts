// Starts one `wrangler dev` serving the built web app (npm run build) for every browser test,
// with its own origin allowed, and stops it when the run ends.
import { existsSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { freePort } from '../../scripts/dev-server.mjs';
import { e2eServer } from '../e2e/server';

declare module 'vitest' {
  export interface ProvidedContext {
    appUrl: string;
  }
}

export default async function setup(project: TestProject) {
  if (!existsSync('client/app/dist/index.html')) {
    throw new Error('the web app is not built: run `npm run build` first (npm test does)');
  }
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
