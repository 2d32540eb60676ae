// First-run set-up for `npm start`: create .dev.vars with a fresh JWT secret if it is missing.
// Migrations are applied by the `start` script itself (wrangler d1 migrations apply --local).
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

if (!existsSync('.dev.vars')) {
  const example = readFileSync('.dev.vars.example', 'utf8');
  const secret = randomBytes(32).toString('hex');
  writeFileSync('.dev.vars', example.replace(/^JWT_SECRET=.*$/m, `JWT_SECRET=${secret}`));
  console.log('created .dev.vars with a random JWT_SECRET');
}
