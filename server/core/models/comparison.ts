/**
 * The comparison attentions' hyperparameters for one stage, resolved from the model's settings
 * (ModelSpec.comparison) and the grid being run: the one place the engine and the profile walk
 * read them from, so both build and count the same layer.
 */
import { defaultPerformerFeatures } from '../engine/attention/performer';
import type { NystromConv as NystromSkip } from '../engine/attention/nystrom';
import { landmarkShape, stageLandmarks } from './build';
import type { ModelSpec, StageSpec } from './spec';

export function performerSettings(stage: StageSpec, model: ModelSpec): { features: number; seed: number } {
  const c = model.comparison;
  return {
    features: c.performerFeatures?.[stage.index - 1] ?? Math.max(1, defaultPerformerFeatures(stage.headDim)),
    // One draw per stage: stages of different head sizes need their own features anyway.
    seed: c.performerSeed + stage.index - 1,
  };
}

export function nystromSettings(stage: StageSpec, model: ModelSpec): { iterations: number; conv: NystromSkip } {
  const c = model.comparison;
  const conv: NystromSkip =
    c.nystromConv === 'none' || (c.nystromConv === 'grid' && stage.localConvKernel === 0)
      ? { kind: 'none' }
      : c.nystromConv === 'grid'
        ? { kind: 'grid', kernel: stage.localConvKernel }
        : { kind: 'sequence', kernel: c.nystromSequenceKernel };
  return { iterations: c.nystromIterations, conv };
}

/** Linformer's projected length k: as configured, else the stage's landmark count at this grid (at least 1). */
export function linformerK(stage: StageSpec, model: ModelSpec, gridH: number, gridW: number): number {
  const landmarks = stageLandmarks(stage, gridH, gridW);
  return model.comparison.linformerK?.[stage.index - 1] ?? Math.max(1, landmarks);
}

/**
 * The size setting that decides what an attention costs and how well it approximates, in words
 * ("m = 49 landmarks"), for tables beside its figures; null for exact softmax and UFO.
 */
export function attentionSetting(stage: StageSpec, model: ModelSpec, gridH: number, gridW: number): string | null {
  const shape = landmarkShape(stage, gridH, gridW);
  // A fixed landmark grid keeps m as the input grows (and pools rectangles on a rectangular grid): say so.
  const landmarks = `${shape.h * shape.w} landmarks${stage.landmarkGrid ? ` (fixed ${shape.h}×${shape.w} grid)` : ''}`;
  switch (stage.attention) {
    case 'soft':
    case 'soft_norm':
      return `m = ${landmarks}, ${model.newton.maxIter} Newton iterations`;
    case 'nystrom': {
      const n = nystromSettings(stage, model);
      const skip = n.conv.kind === 'none' ? 'no skip' : `${n.conv.kind} skip conv ${n.conv.kernel}`;
      return `m = ${landmarks}, ${n.iterations} iterations, ${skip}`;
    }
    case 'performer': {
      const p = performerSettings(stage, model);
      return `m = ${p.features} random features (seed ${p.seed})`;
    }
    case 'linformer':
      return `k = ${linformerK(stage, model, gridH, gridW)} (E, F learned for n = ${gridH * gridW + (stage.clsToken ? 1 : 0)} tokens)`;
    case 'softmax_sr':
      return `keys reduced ${stage.srRatio}×${stage.srRatio} (what the SOFT paper ran as Linformer)`;
    default:
      return null;
  }
}
