// Browser test helpers: Debian's Chromium through playwright-core, one browser context per person
// (their own storage, so their own session), accounts made over the API, an axe-core check, and a
// screenshot of every open page when a test fails (under .e2e/screenshots/).
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, inject, onTestFailed } from 'vitest';
import { E2E_ADMIN } from '../e2e/server';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const shots = join(process.cwd(), '.e2e', 'screenshots');

export interface Person {
  name: string;
  email: string;
  id: string;
  token: string;
  context: BrowserContext;
  /** The person's first tab. */
  page: Page;
  /** Another tab of the same person (same storage, same session). */
  newTab(): Promise<Page>;
}

let browser: Browser | null = null;
const contexts: BrowserContext[] = [];

/** Call at the top of a test file: one browser for the file, closed after it. */
export function withBrowser() {
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
  });
  afterAll(async () => {
    for (const c of contexts.splice(0)) await c.close().catch(() => {});
    await browser?.close();
    browser = null;
  });
}

export const appUrl = () => inject('appUrl');

/** Saves a screenshot of every open page if the current test fails. */
export function screenshotOnFailure(testName: string) {
  onTestFailed(async () => {
    mkdirSync(shots, { recursive: true });
    let n = 0;
    for (const context of contexts) {
      for (const page of context.pages()) {
        n += 1;
        const file = join(shots, `${testName.replace(/[^a-z0-9]+/gi, '-')}-${n}.png`);
        await page.screenshot({ path: file, fullPage: true }).catch(() => {});
        console.log(`screenshot: ${file}`);
      }
    }
  });
}

let counter = 0;

/** Registers an account over the API and opens a signed-in browser context for it. */
export async function person(
  name: string,
  role: 'listener' | 'station_owner' | 'organiser' | 'admin' = 'listener',
): Promise<Person> {
  if (!browser) throw new Error('call withBrowser() in the test file');
  counter += 1;
  const email =
    role === 'admin' ? E2E_ADMIN : `${name.toLowerCase()}-${process.pid}-${counter}@browser.test`;
  const body = { email, password: 'correct horse battery', displayName: name, role };
  if (role === 'admin') body.role = 'listener';
  let res = await fetch(`${appUrl()}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status === 409) {
    res = await fetch(`${appUrl()}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: body.password }),
    });
  }
  if (!res.ok) throw new Error(`account for ${name}: ${res.status} ${await res.text()}`);
  const session = (await res.json()) as { token: string; user: { id: string } };
  const context = await browser.newContext({ baseURL: appUrl() });
  contexts.push(context);
  await context.addInitScript((value: string) => {
    if (!localStorage.getItem('wavecast.session')) localStorage.setItem('wavecast.session', value);
  }, JSON.stringify(session));
  const page = await context.newPage();
  return {
    name,
    email,
    id: session.user.id,
    token: session.token,
    context,
    page,
    newTab: () => context.newPage(),
  };
}

/** Another device of the same person: a browser context of its own, signed in afresh. */
export async function device(who: Person): Promise<Page> {
  if (!browser) throw new Error('call withBrowser() in the test file');
  const session = await api<{ token: string }>(null, 'POST', '/api/auth/login', {
    email: who.email,
    password: 'correct horse battery',
  });
  const context = await browser.newContext({ baseURL: appUrl() });
  contexts.push(context);
  await context.addInitScript((value: string) => {
    if (!localStorage.getItem('wavecast.session')) localStorage.setItem('wavecast.session', value);
  }, JSON.stringify(session));
  return context.newPage();
}

/** A browser context with nobody signed in. */
export async function visitor(): Promise<Page> {
  if (!browser) throw new Error('call withBrowser() in the test file');
  const context = await browser.newContext({ baseURL: appUrl() });
  contexts.push(context);
  return context.newPage();
}

/** Calls the API as a person (set-up the test is not about). */
export async function api<T>(
  who: { token: string } | null,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${appUrl()}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(who ? { authorization: `Bearer ${who.token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** axe-core on the page as it is now: returns the serious and critical violations. */
export async function axe(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: axePath });
  const found = await page.evaluate(async () => {
    const w = window as unknown as {
      axe: {
        run: (
          context: Document,
          options: object,
        ) => Promise<{
          violations: {
            id: string;
            impact: string | null;
            help: string;
            nodes: { target: unknown }[];
          }[];
        }>;
      };
    };
    const result = await w.axe.run(document, {
      runOnly: {
        type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'],
      },
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 3),
    }));
  });
  return found
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact}: ${v.id} (${v.help}) at ${v.targets.join(', ')}`);
}

/** What the first element matching `selector` says now (null while there is none): for `expect.poll`. */
export const text = (page: Page, selector: string) => () =>
  page
    .locator(selector)
    .first()
    .textContent({ timeout: 1000 })
    .catch(() => null);
