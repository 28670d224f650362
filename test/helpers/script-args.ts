/**
 * Command-line options of the benchmark and soak scripts (`--name value`), and the check they
 * share before talking to the bundled server.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './fixtures';

/** The value after `--name`, or undefined when the option is absent. */
export function optionValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export function stringOption(name: string, fallback: string): string {
  return optionValue(name) ?? fallback;
}

export function numberOption(name: string, fallback: number): number {
  const v = optionValue(name);
  return v === undefined ? fallback : Number(v);
}

/** Exits with a clear message when dist/server.js has not been built. */
export function requireBuiltServer(): void {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'server.js'))) {
    console.error('dist/server.js not found: run `npm run build` first.');
    process.exit(1);
  }
}
