/**
 * Config text → diagnostics + ModelSpec. Pure: file existence is asked through a
 * callback so the language server, the CLI and the tests share this unchanged.
 */
import { buildModelSpec, landmarkShape, landmarkStrides, stageGrids } from '../models/build';
import {
  FIG1B_NOTE,
  findModel,
  MODEL_NAMES,
  stageCount,
  type ArchitectureParams,
  type RegisteredModel,
} from '../models/registry';
import { linformerK } from '../models/comparison';
import {
  DEFAULT_COMPARISON,
  needsTokenGrid,
  type AttentionKind,
  type ComparisonParams,
  type GlobalPool,
  type KernelMethod,
  type ModelSpec,
  type NewtonBackward,
  type NewtonVariant,
  type NystromConv,
} from '../models/spec';
import { CONFIG_KEYS, keyDef } from './format';
import { parseConfig, type ConfigEntry, type ConfigValue, type ParsedConfig } from './parse';
import type { Span } from './span';
import { suggest } from './suggest';
import { checkValue, type ConfigDiagnostic } from './values';

export const DEFAULT_RESOLUTION = 224;
export const DEFAULT_NEWTON_ITERATIONS = 20;
/** argparse default of the official main.py when a YAML omits kernel_method. */
export const DEFAULT_KERNEL_METHOD: KernelMethod = 'cuda';

export interface ConfigAnalysis {
  parsed: ParsedConfig;
  diagnostics: ConfigDiagnostic[];
  /** Null when errors prevent building the architecture. */
  spec: ModelSpec | null;
  registered: RegisteredModel | null;
  /** Validated values by key (only keys whose value type-checked). */
  values: Map<string, unknown>;
  entries: Map<string, ConfigEntry>;
}

export interface AnalyzeOptions {
  /** Answers whether a path named in the config exists (resolved against the config's folder by the caller). */
  fileExists?: (relativeOrAbsolutePath: string) => boolean;
}

const ARCH_LIST_KEYS = ['embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios'] as const;
type ArchListKey = (typeof ARCH_LIST_KEYS)[number];
const ARCH_FIELD: Record<ArchListKey, keyof ArchitectureParams> = {
  embed_dims: 'embedDims',
  depths: 'depths',
  num_heads: 'numHeads',
  mlp_ratios: 'mlpRatios',
  sr_ratios: 'srRatios',
};

function itemSpan(entry: ConfigEntry | undefined, index: number): Span | undefined {
  if (!entry) return undefined;
  const v: ConfigValue = entry.value;
  return v.kind === 'list' ? (v.items[index]?.span ?? v.span) : v.span;
}

export function analyzeConfig(text: string, options: AnalyzeOptions = {}): ConfigAnalysis {
  const parsed = parseConfig(text);
  const diagnostics: ConfigDiagnostic[] = [];
  const values = new Map<string, unknown>();
  const entries = new Map<string, ConfigEntry>();
  const push = (d: ConfigDiagnostic) => diagnostics.push(d);

  const result = {
    parsed,
    diagnostics,
    spec: null as ModelSpec | null,
    registered: null as RegisteredModel | null,
    values,
    entries,
  };
  if (parsed.tooLarge) {
    push({
      span: parsed.tooLarge.span,
      severity: 'error',
      code: 'document-too-large',
      message: parsed.tooLarge.message,
    });
    return result;
  }
  for (const s of parsed.syntax)
    push({ span: s.span, severity: s.severity, code: 'yaml-syntax', message: `YAML: ${s.message}` });
  if (parsed.rootProblem)
    push({
      span: parsed.rootProblem.span,
      severity: 'error',
      code: 'not-a-mapping',
      message: parsed.rootProblem.message,
    });

  for (const entry of parsed.entries) {
    entries.set(entry.key, entry);
    const def = keyDef(entry.key);
    if (!def) {
      const near = suggest(
        entry.key,
        CONFIG_KEYS.map((k) => k.key),
      );
      const hint = near.length ? ` Did you mean ${near.map((k) => `\`${k}\``).join(' or ')}?` : '';
      push({
        span: entry.keySpan,
        severity: 'warning',
        code: 'unknown-key',
        key: entry.key,
        message: `Unknown key \`${entry.key}\`: neither an official SOFT key nor a ViT Lens key, so it is ignored.${hint}`,
      });
      continue;
    }
    if (def.key === 'model') {
      const v = entry.value;
      if (v.kind === 'scalar' && typeof v.value === 'string' && !MODEL_NAMES.includes(v.value)) {
        const near = suggest(v.value, MODEL_NAMES);
        const hint = near.length ? ` Did you mean ${near.map((s) => `\`${s}\``).join(' or ')}?` : '';
        push({
          span: v.span,
          severity: 'error',
          code: 'unknown-model',
          key: 'model',
          message: `Unknown model "${v.value}".${hint} Known models: ${MODEL_NAMES.join(', ')}.`,
        });
        continue;
      }
    }
    const checked = checkValue(def, entry.value);
    if (checked.ok) values.set(def.key, checked.value);
    else diagnostics.push(...checked.diagnostics);
  }

  if (parsed.rootProblem) return result;
  const hadModelError = diagnostics.some((d) => d.key === 'model' && d.severity === 'error');
  const modelName = values.get('model') as string | undefined;
  const registered = modelName ? (findModel(modelName) ?? null) : null;
  result.registered = registered;

  // ---- architecture -------------------------------------------------------------------------
  let params: ArchitectureParams;
  if (registered) {
    params = structuredClone(registered.params);
  } else {
    if (hadModelError) return result;
    const missing = ['embed_dims', 'depths', 'num_heads'].filter((k) => !values.has(k));
    if (missing.length) {
      const where = parsed.entries[0]?.keySpan ?? { start: 0, end: Math.min(1, text.length) };
      push({
        span: where,
        severity: 'error',
        code: 'missing-model',
        message: `No \`model\`: name a registered model (e.g. \`model: soft_tiny\`) or define a custom SOFT pyramid with ${missing.map((k) => `\`${k}\``).join(', ')}.`,
      });
      return result;
    }
    params = structuredClone(findModel('soft_tiny')!.params);
  }
  const n = stageCount(params.family);
  let archOk = true;
  for (const key of ARCH_LIST_KEYS) {
    const v = values.get(key) as number[] | undefined;
    if (!v) continue;
    if (v.length !== n) {
      archOk = false;
      push({
        span: entries.get(key)!.value.span,
        severity: 'error',
        code: 'list-length',
        key,
        message: `\`${key}\` needs ${n} entries (one per stage of ${FAMILY_WORDS[params.family]}), got ${v.length}.`,
      });
      continue;
    }
    (params[ARCH_FIELD[key]] as number[]) = v;
  }
  const attention = values.get('attention') as string | string[] | undefined;
  if (attention !== undefined) {
    if (Array.isArray(attention)) {
      if (attention.length !== n) {
        archOk = false;
        push({
          span: entries.get('attention')!.value.span,
          severity: 'error',
          code: 'list-length',
          key: 'attention',
          message: `\`attention\` as a list needs ${n} entries (one per stage), got ${attention.length}.`,
        });
      } else params.attention = attention as AttentionKind[];
    } else {
      // One value swaps the efficient-attention stages; the SOFT pyramid's stage-4 softmax+cls block stays.
      const swapped = params.family === 'soft' ? n - 1 : n;
      params.attention = params.attention.map((a, i) => (i < swapped ? (attention as AttentionKind) : a));
    }
  }
  const comparison = comparisonParams(values, entries, n, params.attention, push);
  isotropicKeys(params, values, entries, push);
  // Stages whose tokens include a cls token: the SOFT pyramid's stage 4, the ViT with global_pool: token.
  const clsStage = (s: number) =>
    params.family === 'soft' ? s === n - 1 : params.family === 'vit' && (params.globalPool ?? 'token') === 'token';
  if (!registered) params.newtonVariant = params.attention.includes('soft_norm') ? 'B' : 'A';
  const variantGiven = values.get('newton_variant') as NewtonVariant | undefined;
  const newtonVariant = variantGiven ?? params.newtonVariant;

  for (let s = 0; s < n && archOk; s++) {
    const dim = params.embedDims[s]!;
    const heads = params.numHeads[s]!;
    if (dim % heads !== 0) {
      archOk = false;
      const span = itemSpan(entries.get('embed_dims'), s) ??
        itemSpan(entries.get('num_heads'), s) ??
        entries.get('model')?.value.span ?? { start: 0, end: 1 };
      push({
        span,
        severity: 'error',
        code: 'dims-not-divisible',
        key: 'embed_dims',
        message: `Stage ${s + 1}: embed_dims ${dim} is not divisible by num_heads ${heads} (head size would be ${(dim / heads).toFixed(2)}).`,
      });
    }
    const kind = params.attention[s]!;
    const isSoft = kind === 'soft' || kind === 'soft_norm';
    const attnSpanOf = () =>
      itemSpan(entries.get('attention'), s) ?? entries.get('model')?.value.span ?? { start: 0, end: 1 };
    const gridPooling = needsTokenGrid(kind);
    // A fixed landmark grid (vit_paper_fig1b) sets the landmark strides from the grid, not from sr_ratios.
    const fixedLandmarks = !!params.landmarkGrid && kind !== 'softmax_sr';
    if (params.family === 'vit' && gridPooling && clsStage(s)) {
      archOk = false;
      push({
        span: attnSpanOf(),
        severity: 'error',
        code: 'grid-attention-cls-token',
        key: 'attention',
        message: `${kind} pools ${kind === 'softmax_sr' ? 'its keys' : 'its landmarks'} from the token grid, which the ViT's cls token (global_pool: token) is not part of. Set \`global_pool: avg\` (no cls token, the patch tokens averaged: timm's class_token=False) to run it on the patch grid, or use softmax, performer, linformer or ufo.`,
      });
    } else if (kind === 'nystrom' && params.family === 'soft' && s === n - 1) {
      archOk = false;
      push({
        span: attnSpanOf(),
        severity: 'error',
        code: 'nystrom-in-cls-stage',
        key: 'attention',
        message: `Stage ${s + 1} carries the cls token; Nyströmformer pools its landmarks from the token grid, which the cls token is not part of. Use softmax, performer, linformer or ufo there.`,
      });
    } else if (kind === 'nystrom' && !fixedLandmarks && params.srRatios[s]! < 2) {
      archOk = false;
      push({
        span: itemSpan(entries.get('sr_ratios'), s) ?? attnSpanOf(),
        severity: 'error',
        code: 'nystrom-needs-landmarks',
        key: 'sr_ratios',
        message: `Stage ${s + 1} uses nystrom attention, whose landmarks are r×r average pools of the grid: it needs sr_ratios ≥ 2 (got ${params.srRatios[s]}; r = 1 would iterate an n×n inverse).`,
      });
    }
    const attnSpan = itemSpan(entries.get('attention'), s) ?? entries.get('model')?.value.span ?? { start: 0, end: 1 };
    if (isSoft && params.family === 'soft' && s === n - 1) {
      archOk = false;
      push({
        span: attnSpan,
        severity: 'error',
        code: 'soft-in-cls-stage',
        key: 'attention',
        message: `Stage ${s + 1} carries the cls token and uses the official ratio-1 path, which is dead code in the official SOFT (quirk Q2). Use softmax, softmax_sr or ufo there.`,
      });
    } else if (isSoft && !fixedLandmarks && params.srRatios[s]! < 2) {
      archOk = false;
      push({
        span: itemSpan(entries.get('sr_ratios'), s) ?? attnSpan,
        severity: 'error',
        code: 'soft-needs-landmarks',
        key: 'sr_ratios',
        message: `Stage ${s + 1} uses ${kind} attention, which needs a landmark stride sr_ratios ≥ 2 (got ${params.srRatios[s]}).`,
      });
    }
    if (kind === 'soft_norm' && newtonVariant === 'A') {
      push({
        span: entries.get('newton_variant')?.value.span ?? attnSpan,
        severity: 'warning',
        code: 'norm-variant',
        key: 'newton_variant',
        message:
          'SOFT-Norm kernels use Newton variant B in the official code (global alpha with back-off, no 0.01·I); variant A here departs from it.',
      });
    }
  }
  const mlpEntry = entries.get('mlp_ratios');
  if (mlpEntry && params.family === 'soft' && values.has('mlp_ratios')) {
    (values.get('mlp_ratios') as number[]).forEach((r, s) => {
      if (s < n - 1 && r !== 4) {
        push({
          span: itemSpan(mlpEntry, s)!,
          severity: 'information',
          code: 'mlp-ratio-ignored',
          key: 'mlp_ratios',
          message: `Stage ${s + 1}: the official SOFT block ignores mlp_ratios and builds a 4·D FFN (quirk Q5); ${r} has no effect.`,
        });
      }
    });
  }

  // ---- resolutions ----------------------------------------------------------------------------
  const resolutions = (values.get('img_size') as number[] | undefined) ?? [DEFAULT_RESOLUTION];
  const stagesPreview = archOk ? buildSpec(params, newtonVariant, registered, values, resolutions, comparison) : null;
  if (stagesPreview) {
    resolutions.forEach((res, i) => {
      const span = itemSpan(entries.get('img_size'), i) ?? entries.get('model')?.value.span ?? { start: 0, end: 1 };
      const grids = stageGrids(stagesPreview, res);
      stagesPreview.stages.forEach((stage, s) => {
        const g = grids[s]!;
        if (g < 1) {
          archOk = false;
          push({
            span,
            severity: 'error',
            code: 'resolution-too-small',
            key: 'img_size',
            message: `At ${res}×${res} stage ${stage.index} has no tokens left after its stem.`,
          });
          return;
        }
        if (stage.attention === 'linformer') {
          const k = linformerK(stage, stagesPreview, g, g);
          const tokens = g * g + (stage.clsToken ? 1 : 0);
          if (k > tokens)
            push({
              span:
                itemSpan(entries.get('linformer_k'), stage.index - 1) ?? entries.get('linformer_k')?.value.span ?? span,
              severity: 'warning',
              code: 'linformer-k-exceeds-tokens',
              key: 'linformer_k',
              message: `At ${res}×${res} stage ${stage.index} has ${tokens} tokens and linformer_k = ${k}: E and F project the keys up, not down, so Linformer costs more than softmax there.`,
            });
          return;
        }
        if (
          stage.attention !== 'soft' &&
          stage.attention !== 'soft_norm' &&
          stage.attention !== 'softmax_sr' &&
          stage.attention !== 'nystrom'
        )
          return;
        // PVT's spatial reduction keeps sr_ratio; the landmark attentions may have a fixed landmark grid.
        const [r, rw] =
          stage.attention === 'softmax_sr' ? [stage.srRatio, stage.srRatio] : landmarkStrides(stage, g, g);
        if (g < r) {
          archOk = false;
          push({
            span,
            severity: 'error',
            code: 'no-landmarks',
            key: 'img_size',
            message: `At ${res}×${res} stage ${stage.index}'s ${g}×${g} grid is smaller than the stride r=${r}: the landmark conv yields no landmarks.`,
          });
        } else if (g % r !== 0 || g % rw !== 0) {
          const shape = landmarkShape(stage, g, g);
          const m = stage.attention === 'softmax_sr' ? Math.floor(g / r) ** 2 : shape.h * shape.w;
          push({
            span,
            severity: 'warning',
            code: 'landmark-remainder',
            key: 'img_size',
            message: `At ${res}×${res} stage ${stage.index}'s ${g}×${g} grid is not divisible by r=${r}: the stride-${r} landmark conv drops the last ${g % r} row(s) and column(s) (m = ${m} landmarks; quirk Q10).`,
          });
        }
      });
    });
  }

  // ---- model notes ------------------------------------------------------------------------------
  const modelSpan = entries.get('model')?.value.span;
  if (registered && modelSpan) {
    if (registered.name.endsWith('_small') && registered.params.family === 'soft' && !values.has('depths')) {
      push({
        span: modelSpan,
        severity: 'information',
        code: 'readme-mismatch',
        key: 'model',
        message: registered.notes[0]!,
      });
    }
    if (registered.params.family === 'ufo') {
      push({
        span: modelSpan,
        severity: 'information',
        code: 'xcit-assumption',
        key: 'model',
        message: registered.notes[0]!,
      });
    }
    if (registered.params.landmarkGrid) {
      push({
        span: modelSpan,
        severity: 'information',
        code: 'paper-stack',
        key: 'model',
        message: FIG1B_NOTE,
      });
    }
  }

  // ---- files --------------------------------------------------------------------------------------
  if (options.fileExists) {
    const checkpoint = values.get('checkpoint') as string | undefined;
    if (checkpoint && !options.fileExists(checkpoint)) {
      push({
        span: entries.get('checkpoint')!.value.span,
        severity: 'warning',
        code: 'file-not-found',
        key: 'checkpoint',
        message: `Checkpoint file not found: ${checkpoint} (paths are relative to this config).`,
      });
    }
    const images = values.get('images') as string[] | undefined;
    images?.forEach((img, i) => {
      if (!options.fileExists!(img))
        push({
          span: itemSpan(entries.get('images'), i)!,
          severity: 'warning',
          code: 'file-not-found',
          key: 'images',
          message: `Image not found: ${img} (paths are relative to this config).`,
        });
    });
  }

  result.spec = archOk ? stagesPreview : null;
  return result;
}

function buildSpec(
  params: ArchitectureParams,
  newtonVariant: NewtonVariant,
  registered: RegisteredModel | null,
  values: Map<string, unknown>,
  resolutions: number[],
  comparison: ComparisonParams,
): ModelSpec {
  const swapped = registered ? params.attention.some((a, i) => a !== registered.params.attention[i]) : false;
  const name = registered?.name ?? 'custom';
  const notes = [...(registered?.notes ?? [])];
  if (swapped)
    notes.push(
      `Attention swapped to [${params.attention.join(', ')}] on the ${registered!.name} backbone: same widths, depths and block layout, not an official model.`,
    );
  const variantGiven = values.has('newton_variant');
  return buildModelSpec({
    name,
    title: registered
      ? registered.title + (swapped ? ' — attention swapped' : '')
      : 'Custom 4-stage SOFT-pyramid architecture',
    params,
    resolutions,
    numClasses: (values.get('num_classes') as number | undefined) ?? 1000,
    newtonMaxIter: (values.get('newton_maxiter') as number | undefined) ?? DEFAULT_NEWTON_ITERATIONS,
    newtonVariant,
    ...(values.has('newton_backward') ? { newtonBackward: values.get('newton_backward') as NewtonBackward } : {}),
    newtonVariantSource: variantGiven
      ? 'set by newton_variant in this config'
      : (registered?.newtonNote ?? 'default for the attention kinds used'),
    kernelMethod: (values.get('kernel_method') as KernelMethod | undefined) ?? DEFAULT_KERNEL_METHOD,
    comparison,
    notes,
    published:
      swapped ||
      values.has('depths') ||
      values.has('embed_dims') ||
      values.has('num_heads') ||
      values.has('patch_size') ||
      values.has('global_pool')
        ? null
        : (registered?.published ?? null),
  });
}

const FAMILY_WORDS: Record<ArchitectureParams['family'], string> = {
  soft: 'the 4-stage SOFT pyramid',
  ufo: 'the isotropic UFO-ViT',
  vit: 'the isotropic ViT',
};

/**
 * `patch_size` and `global_pool` set the ViT family's stem and pooling; the other families have
 * fixed stems and classify from a cls token, so there the keys are pointed out, not applied.
 */
function isotropicKeys(
  params: ArchitectureParams,
  values: Map<string, unknown>,
  entries: Map<string, ConfigEntry>,
  push: (d: ConfigDiagnostic) => void,
): void {
  for (const key of ['patch_size', 'global_pool'] as const) {
    if (!values.has(key)) continue;
    if (params.family !== 'vit') {
      push({
        span: entries.get(key)!.keySpan,
        severity: 'information',
        code: 'setting-unused',
        key,
        message: `\`${key}\` applies to the isotropic ViT family (\`vit_*\`) only; ${FAMILY_WORDS[params.family]} has a fixed stem and classifies from a cls token, so it has no effect here.`,
      });
      continue;
    }
    if (key === 'patch_size') params.patchSize = values.get(key) as number;
    else params.globalPool = values.get(key) as GlobalPool;
  }
  if (params.landmarkGrid && values.has('sr_ratios'))
    push({
      span: entries.get('sr_ratios')!.keySpan,
      severity: 'information',
      code: 'fixed-landmark-grid',
      key: 'sr_ratios',
      message: `This model keeps m = ${params.landmarkGrid ** 2} landmarks at every input (a fixed ${params.landmarkGrid}×${params.landmarkGrid} landmark grid, strides ⌊H/${params.landmarkGrid}⌋ × ⌊W/${params.landmarkGrid}⌋): \`sr_ratios\` sets only PVT's spatial reduction (softmax_sr) and the depthwise-conv kernel on V (r + 1).`,
    });
}

const COMPARISON_KEYS: Record<string, AttentionKind> = {
  performer_features: 'performer',
  performer_seed: 'performer',
  nystrom_iterations: 'nystrom',
  nystrom_conv: 'nystrom',
  nystrom_sequence_kernel: 'nystrom',
  linformer_k: 'linformer',
};

/**
 * The comparison attentions' settings from the config: per-stage keys take one value for every
 * stage or one per stage; a setting for an attention no stage runs is pointed out, not an error.
 */
function comparisonParams(
  values: Map<string, unknown>,
  entries: Map<string, ConfigEntry>,
  n: number,
  attention: readonly AttentionKind[],
  push: (d: ConfigDiagnostic) => void,
): ComparisonParams {
  const perStage = (key: 'performer_features' | 'linformer_k'): number[] | null => {
    const v = values.get(key) as number[] | undefined;
    if (!v) return null;
    if (v.length === 1) return Array.from({ length: n }, () => v[0]!);
    if (v.length === n) return v;
    push({
      span: entries.get(key)!.value.span,
      severity: 'error',
      code: 'list-length',
      key,
      message: `\`${key}\` takes one value for every stage or one per stage (${n}), got ${v.length}.`,
    });
    return null;
  };
  for (const [key, kind] of Object.entries(COMPARISON_KEYS)) {
    if (values.has(key) && !attention.includes(kind))
      push({
        span: entries.get(key)!.keySpan,
        severity: 'information',
        code: 'setting-unused',
        key,
        message: `No stage runs ${kind} attention, so \`${key}\` has no effect (set \`attention: ${kind}\` to compare it).`,
      });
  }
  const sequenceKernel =
    (values.get('nystrom_sequence_kernel') as number | undefined) ?? DEFAULT_COMPARISON.nystromSequenceKernel;
  if (sequenceKernel % 2 === 0)
    push({
      span: entries.get('nystrom_sequence_kernel')!.value.span,
      severity: 'error',
      code: 'even-kernel',
      key: 'nystrom_sequence_kernel',
      message: `\`nystrom_sequence_kernel\` must be odd: with padding ⌊c/2⌋ an even kernel of ${sequenceKernel} would make the skip one token longer than the sequence.`,
    });
  return {
    performerFeatures: perStage('performer_features'),
    performerSeed: (values.get('performer_seed') as number | undefined) ?? DEFAULT_COMPARISON.performerSeed,
    nystromIterations: (values.get('nystrom_iterations') as number | undefined) ?? DEFAULT_COMPARISON.nystromIterations,
    nystromConv: (values.get('nystrom_conv') as NystromConv | undefined) ?? DEFAULT_COMPARISON.nystromConv,
    nystromSequenceKernel: sequenceKernel % 2 === 0 ? DEFAULT_COMPARISON.nystromSequenceKernel : sequenceKernel,
    linformerK: perStage('linformer_k'),
  };
}
