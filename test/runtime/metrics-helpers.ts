// Reading /metrics in the in-runtime tests: parsed by a Prometheus text-format parser (not a
// regex), with the checks that parser leaves out: sample values are numbers, names and label
// names are valid, every family is typed, and no label carries an id.
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { expect } from 'vitest';
import { api } from './helpers';

export const SERVER_KEY = 'test-server-key-0123456789abcdef0123456789';

/** The only label names /metrics may use (docs/operations.md): never a user or a channel id. */
export const ALLOWED_LABELS = new Set([
  'channel_kind',
  'route',
  'status',
  'code',
  'reason',
  'result',
  'source',
  'le',
]);

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export interface Scrape {
  text: string;
  families: ParsedFamily[];
}

export async function scrape(token = SERVER_KEY): Promise<Scrape> {
  const res = await api('/metrics', { token });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
  const text = await res.text();
  const families = parsePrometheusTextFormat(text);
  for (const family of families) {
    expect(family.name).toMatch(NAME);
    expect(family.type).not.toBe('UNTYPED');
    expect(family.help.length).toBeGreaterThan(0);
    for (const sample of family.metrics) {
      for (const label of Object.keys(sample.labels ?? {})) expect(ALLOWED_LABELS).toContain(label);
      for (const v of [
        sample.value,
        sample.count,
        sample.sum,
        ...Object.values(sample.buckets ?? {}),
      ]) {
        if (v !== undefined) expect(Number.isNaN(Number(v)), `${family.name} ${v}`).toBe(false);
      }
    }
  }
  return { text, families };
}

/** A counter's or gauge's value for exactly these labels (0 when the series does not exist). */
export function value(s: Scrape, name: string, labels: Record<string, string>): number {
  const family = s.families.find((f) => f.name === `wavecast_${name}`);
  const sample = family?.metrics.find((m) => sameLabels(m.labels ?? {}, labels));
  return sample?.value === undefined ? 0 : Number(sample.value);
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
