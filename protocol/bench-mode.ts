/**
 * Inference and training-step benchmark results side by side: which mode a case or a scaling fit
 * belongs to, a report cut down to one mode (what the dashboard's benchmark view draws), and two
 * runs of the same config merged into one report — a training run beside an inference run — so
 * the view can switch between them. Plain functions on the plain result objects.
 */
import type { BenchCase, BenchMode, BenchReport, ScalingFit } from './results';

/** Both modes, in the order a switch lists them. */
export const BENCH_MODES: readonly BenchMode[] = ['inference', 'train'];

/** A case's mode: reports from before training steps have none (forward passes). */
export const caseMode = (c: Pick<BenchCase, 'mode'>): BenchMode => c.mode ?? 'inference';

/** A fit's mode: its own where a merge tagged it, else its report's. */
export const fitMode = (f: ScalingFit, b: Pick<BenchReport, 'mode'>): BenchMode => f.mode ?? b.mode ?? 'inference';

/** The modes a report has cases of and its own (a live run's before its first case), inference first. */
export function benchModes(b: BenchReport): BenchMode[] {
  const own = b.mode ?? 'inference';
  return BENCH_MODES.filter((m) => m === own || b.cases.some((c) => caseMode(c) === m));
}

/** The report as one mode's run: that mode's cases and fits only (the rest unchanged). */
export function benchInMode(b: BenchReport, mode: BenchMode): BenchReport {
  return {
    ...b,
    mode,
    cases: b.cases.filter((c) => caseMode(c) === mode),
    scaling: b.scaling.filter((f) => fitMode(f, b) === mode),
  };
}

/**
 * `next` with what `prev` measured in the other mode kept beside it: prev's cases and fits of a mode
 * `next` has no case of (a new run replaces its own mode's results), every fit tagged with its mode.
 * Runtimes, unavailable runtimes, device limits and notes are the union (next's first); the run's own
 * fields (start, overhead, mode) are next's. A report of another model or config is not merged:
 * `next` comes back as it is.
 */
export function mergeBenchReports(prev: BenchReport | null | undefined, next: BenchReport): BenchReport {
  if (!prev || prev.model !== next.model || prev.config !== next.config) return next;
  const nextModes = new Set<BenchMode>([...next.cases.map(caseMode), next.mode ?? 'inference']);
  const kept = prev.cases.filter((c) => !nextModes.has(caseMode(c)));
  if (!kept.length) return next;
  const keptModes = new Set(kept.map(caseMode));
  const tag = (b: BenchReport) => (f: ScalingFit) => ({ ...f, mode: fitMode(f, b) });
  const runtimes = [...next.runtimes, ...prev.runtimes.filter((r) => !next.runtimes.some((x) => x.id === r.id))];
  const training = next.training ?? (keptModes.has('train') ? prev.training : undefined);
  return {
    ...next,
    runtimes,
    unavailable: [
      ...next.unavailable,
      ...prev.unavailable.filter(
        (u) => !next.unavailable.some((x) => x.id === u.id) && !runtimes.some((r) => r.id === u.id),
      ),
    ],
    cases: [...kept, ...next.cases],
    scaling: [...prev.scaling.map(tag(prev)).filter((f) => keptModes.has(f.mode)), ...next.scaling.map(tag(next))],
    mode: next.mode ?? 'inference',
    ...(training ? { training } : {}),
    ...(prev.limits || next.limits
      ? {
          limits: [
            ...(next.limits ?? []),
            ...(prev.limits ?? []).filter((l) => !(next.limits ?? []).some((x) => x.runtime === l.runtime)),
          ],
        }
      : {}),
    notes: [...next.notes, ...prev.notes.filter((n) => !next.notes.includes(n))],
  };
}
