/**
 * Assembles the dashboard's data from what the commands computed: one place that decides
 * what a report shows, used by the CLI's --html and the extension's panel alike.
 */
import type { ApproxReport } from '../../protocol/approx';
import type { DashboardData, DashboardView } from '../../protocol/dashboard';
import type { GradReport } from '../../protocol/grad';
import type { InferReport } from '../../protocol/infer';
import type { BenchReport, PinvReport } from '../../protocol/results';
import type { ModelSpec } from '../core/models/spec';
import { profileModel } from '../core/profile/profile';
import { summarize } from '../core/profile/summary';
import { profileSweep } from '../core/profile/sweep';

export interface DashboardInputs {
  spec: ModelSpec;
  /** Config file the results come from (a path, or the editor's URI). */
  source: string | null;
  /** How the title names it (the editor: its workspace-relative path); default: `source`. */
  label?: string;
  producer: string;
  /** Resolution of the profile view (default: the config's first). */
  resolution?: number;
  /** Resolutions of the MACs/memory-vs-resolution sweep (default: profile/sweep.ts). */
  sweepResolutions?: number[];
  bench?: BenchReport | null;
  pinv?: PinvReport | null;
  infer?: InferReport | null;
  approx?: ApproxReport | null;
  grad?: GradReport | null;
  view: DashboardView;
}

export function dashboardData(i: DashboardInputs): DashboardData {
  const resolution = i.resolution ?? i.spec.resolutions[0] ?? 224;
  const profile = summarize(i.spec, profileModel(i.spec, resolution, 1), { ops: false });
  const label = i.label ?? i.source;
  return {
    title: `${i.spec.name}${label ? ` — ${label}` : ''}`,
    source: i.source,
    generatedAt: new Date().toISOString(),
    producer: i.producer,
    profile,
    profileSweep: profileSweep(i.spec, i.sweepResolutions),
    bench: i.bench ?? null,
    pinv: i.pinv ?? null,
    infer: i.infer ?? null,
    approx: i.approx ?? null,
    grad: i.grad ?? null,
    live: null,
    view: i.view,
  };
}
