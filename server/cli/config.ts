/**
 * A config file as the CLI reads it: analysed by the same code as the editor's diagnostics,
 * each diagnostic printed as file:line:col, and a config with errors refused (exit status 2).
 */
import fs from 'node:fs';
import { analyzeConfig, type ConfigAnalysis } from '../core/config/analyze';
import { positionOf } from '../core/config/parse';
import type { ModelSpec } from '../core/models/spec';
import { fileExistsNear } from '../inputs/locate';
import type { Out } from './args';

/** A config's analysis with the model it describes. */
export type RunnableConfig = ConfigAnalysis & { spec: ModelSpec };

/** The diagnostics as `file:line:col: severity [code] (key `k`) message` lines. */
export function diagnosticLines(file: string, a: ConfigAnalysis): string[] {
  return a.diagnostics.map((d) => {
    const p = positionOf(a.parsed, d.span.start);
    const key = d.key ? ` (key \`${d.key}\`)` : '';
    return `${file}:${p.line + 1}:${p.character + 1}: ${d.severity} [${d.code}]${key} ${d.message}`;
  });
}

export const hasErrors = (a: ConfigAnalysis): boolean => a.diagnostics.some((d) => d.severity === 'error');

/** Reads and analyses a config file; an unreadable file prints why and gives exit status 2. */
export function readConfig(file: string, stderr: Out): ConfigAnalysis | number {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    stderr(`${file}: cannot read the config: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 2;
  }
  const exists = fileExistsNear(file);
  return analyzeConfig(text, exists ? { fileExists: exists } : {});
}

/** Reads and analyses a config for the commands that run its model; prints diagnostics, refuses errors. */
export function loadRunnableConfig(file: string, stderr: Out): RunnableConfig | number {
  const a = readConfig(file, stderr);
  if (typeof a === 'number') return a;
  const lines = diagnosticLines(file, a);
  if (hasErrors(a) || !a.spec) {
    for (const l of lines) stderr(l);
    stderr(`${file}: the config has errors; nothing run.`);
    return 2;
  }
  return a as RunnableConfig;
}

/** The ModelSpec of a config without errors, or the exit status after printing why not. */
export function loadConfigSpec(file: string, stderr: Out): ModelSpec | number {
  const a = loadRunnableConfig(file, stderr);
  return typeof a === 'number' ? a : a.spec;
}
