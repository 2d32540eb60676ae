// Set-up run by `npm start` before `wrangler dev`: create .dev.vars with a fresh JWT secret if
// it is missing, and apply every D1 migration to the local database.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

if (!existsSync('.dev.vars')) {
  const example = readFileSync('.dev.vars.example', 'utf8');
  const secret = randomBytes(32).toString('hex');
  writeFileSync('.dev.vars', example.replace(/^JWT_SECRET=.*$/m, `JWT_SECRET=${secret}`));
  console.log('created .dev.vars with a random JWT_SECRET');
}

// CI=true tells wrangler not to ask "continue?" before applying: `npm start` is one step.
const wrangler = fileURLToPath(
  new URL('../node_modules/wrangler/bin/wrangler.js', import.meta.url),
);
execFileSync(process.execPath, [wrangler, 'd1', 'migrations', 'apply', 'DB', '--local'], {
  stdio: 'inherit',
  env: { ...process.env, CI: 'true' },
});
