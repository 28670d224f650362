/**
 * MACs and estimated memory versus resolution, for the config's own attention and the ones it
 * is compared with, on the same backbone (same widths, depths and stems; only the attention
 * of the non-cls stages swapped). Exact counts from the profile walk; memory is its estimate.
 */
import type { ProfileSweep, ProfileSweepPoint } from '../../../protocol/dashboard';
import { stageGrids, stageLandmarks } from '../models/build';
import { needsTokenGrid, type AttentionKind, type ModelSpec, type StageSpec } from '../models/spec';
import { profileModel } from './profile';

/** Resolutions the dashboard sweeps when the caller names none. */
export const DEFAULT_SWEEP_RESOLUTIONS = [224, 320, 384, 448, 512, 640, 768, 1024];

/**
 * Whether a comparison swaps this stage's attention: every stage but the SOFT pyramid's stage-4
 * softmax + cls block (the paper's comparisons keep it). The ViT's one stage is swapped with or
 * without its cls token; the grid-pooling kinds then cannot run there (`unsupported`).
 */
function swappable(spec: ModelSpec, s: StageSpec): boolean {
  return !(spec.family === 'soft' && s.clsToken);
}

/** The config's efficient attention first, then UFO, the SOFT paper's comparison set and both softmax variants. */
export function comparedAttentions(spec: ModelSpec): AttentionKind[] {
  const own = spec.stages.filter((s) => swappable(spec, s)).map((s) => s.attention);
  return [...new Set<AttentionKind>([...own, 'ufo', 'performer', 'nystrom', 'linformer', 'softmax_sr', 'softmax'])];
}

/** The same backbone with every swappable stage (all but the SOFT pyramid's cls stage) switched to `kind`. */
export function withAttention(spec: ModelSpec, kind: AttentionKind): ModelSpec {
  return { ...spec, stages: spec.stages.map((s) => (swappable(spec, s) ? { ...s, attention: kind } : s)) };
}

/** Why `kind` cannot run on this backbone at this resolution, or null. */
function unsupported(spec: ModelSpec, kind: AttentionKind, resolution: number): string | null {
  const grids = stageGrids(spec, resolution);
  for (const [i, s] of spec.stages.entries()) {
    if (!swappable(spec, s)) continue;
    const needsLandmarks = needsTokenGrid(kind);
    if (needsLandmarks && s.clsToken) return `stage ${i + 1} carries a cls token, which is not on the token grid`;
    if (needsLandmarks && !s.landmarkGrid && s.srRatio < 2 && kind !== 'softmax_sr')
      return `stage ${i + 1} has no landmark stride (sr_ratio ${s.srRatio})`;
    const grid = grids[i]!;
    const m = kind === 'softmax_sr' ? Math.floor(grid / s.srRatio) ** 2 : stageLandmarks(s, grid, grid);
    if (needsLandmarks && m < 1) return `stage ${i + 1}: grid ${grid} has no landmark at stride ${s.srRatio}`;
  }
  return null;
}

export function profileSweep(
  spec: ModelSpec,
  resolutions: number[] = DEFAULT_SWEEP_RESOLUTIONS,
  attentions: AttentionKind[] = comparedAttentions(spec),
): ProfileSweep {
  const points: ProfileSweepPoint[] = [];
  const used: AttentionKind[] = [];
  for (const kind of attentions) {
    const variant = withAttention(spec, kind);
    let any = false;
    for (const resolution of resolutions) {
      if (unsupported(variant, kind, resolution)) continue;
      const p = profileModel(variant, resolution, 1);
      const first = p.stages.find((s) => s.tokens > 0);
      points.push({
        attention: kind,
        resolution,
        tokens: first?.tokens ?? 0,
        params: p.params,
        macs: p.macsByConvention.B,
        peakBytes: p.memory.peakTotalBytes,
      });
      any = true;
    }
    if (any) used.push(kind);
  }
  return { model: spec.name, convention: 'B', resolutions, attentions: used, points };
}
