/**
 * The command line's vocabulary, shared by every command: the shape of a command, the error
 * that means "bad usage" (exit status 2 and the usage text), and the argument parsers more than
 * one command needs.
 */
import type { RuntimeId } from '../../protocol/results';
import { ALL_RUNTIMES } from '../runtimes/runner';

/** Writes one line (stdout for results, stderr for diagnostics and progress). */
export type Out = (s: string) => void;

/** One `vitlens` command: its usage lines and what runs it; the result is the exit status. */
export interface Command {
  name: string;
  /** Its lines of the usage text, indented as printed. */
  usage: string;
  run(args: string[], stdout: Out, stderr: Out): number | Promise<number>;
}

export class UsageError extends Error {}

export const intArg = (name: string, v: string, min: number, max: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got "${v}".`);
  return n;
};

/** A --seed value (random weights and inputs). */
export const seedArg = (v: string): number => intArg('seed', v, 0, 2 ** 31);

/** A repeatable option's values, each of which may also be a comma-separated list. */
export function listArg(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}

/** A --backend value: one of the runtimes the runners know. */
export function runtimeArg(id: string): RuntimeId {
  if (!ALL_RUNTIMES.includes(id as RuntimeId))
    throw new UsageError(`--backend ${id}: expected one of ${ALL_RUNTIMES.join(', ')}.`);
  return id as RuntimeId;
}
