/** Paths and loaders for the repository's own fixtures (never anything outside the repository). */
import fs from 'node:fs';
import path from 'node:path';
import { analyzeConfig } from '../../server/core/config/analyze';
import type { ModelSpec } from '../../server/core/models/spec';

export const ROOT = path.resolve(__dirname, '..', '..');
export const FIXTURES = path.join(ROOT, 'fixtures');
export const SOFT_CONFIGS = path.join(FIXTURES, 'configs', 'soft');

export function readJson<T = any>(rel: string): T {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, rel), 'utf8')) as T;
}

export function officialConfigFiles(): string[] {
  return fs
    .readdirSync(SOFT_CONFIGS)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => path.join(SOFT_CONFIGS, f));
}

/** Spec of a config text; fails the test if the config has errors. */
export function specOf(text: string): ModelSpec {
  const a = analyzeConfig(text);
  const errors = a.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length || !a.spec) throw new Error(`config has errors: ${errors.map((e) => e.message).join('; ')}`);
  return a.spec;
}
