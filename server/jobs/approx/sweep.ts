/**
 * Approximation quality (issue 16, part 3): for each approximate attention, on the same real
 * Q, K, V of a model (activations.ts), its error against its exact counterpart per stage and head,
 * as a function of its hyperparameter, with the analytic MACs of each point (error.ts has the
 * maths). Everything is float64; one head's N×N matrices are held at a time, so memory is bounded
 * by one stage's N² (see ApproxOptions.maxTokens).
 *
 * What each method is measured against, and with what:
 * - SOFT / SOFT-Norm against the Gaussian-kernel attention it approximates, S = exp(−dist(Qs, Qs)/2)
 *   (docs/MATHS.md §1.3): Ŝ_run = K1·NR(K2)·K1ᵀ with the model's Newton–Raphson variant iterated
 *   T times, Ŝ_exact = K1·K2⁺·K1ᵀ; SOFT-Norm scales both inverses by D^-½ (§1.5).
 * - Nyströmformer, Performer, Linformer and PVT spatial reduction against softmax(q·kᵀ/√d) on the
 *   same q, k, v; on a SOFT stage q = k = SOFT's own Qs·d^¼ (SOFT has no key projection) and
 *   v = W_v·x, so every method sees the same real tensors.
 * - MACs per head: the docs/MATHS.md §6A formulas (attention core; projections and skip convs out,
 *   as the errors leave the skips out).
 * Each approximation's factors (K1, K2 and the Newton iterates; F, A, B and Z; φ(Q), φ(K) and D;
 * Linformer's rows P) come from the attention's own graph on the stage's input, evaluated in float64
 * on the reference runtime (factors.ts); only the exact attentions are this job's own.
 */
import type {
  ApproxHead,
  ApproxMethod,
  ApproxMethodReport,
  ApproxPoint,
  ApproxReport,
  ApproxStage,
} from '../../../protocol/approx';
import { APPROX_METHODS } from '../../../protocol/approx';
import { attentionName } from '../../../protocol/format';
import { PERFORMER_EPS } from '../../core/engine/attention/performer';
import { seededRandom } from '../../core/engine/weights';
import { landmarkStrides } from '../../core/models/build';
import { nystromSettings, performerSettings } from '../../core/models/comparison';
import type { ModelSpec, StageSpec } from '../../core/models/spec';
import { matmulRect, transpose } from '../../core/engine/linalg';
import { prepareModel, stageOperands, type PreparedModel, type StageOperands } from './activations';
import {
  exactAttention,
  exactGaussian,
  exactSoftmax,
  LowRank,
  outputError,
  productErrors,
  pseudoInverseFactors,
  type ExactAttention,
} from './error';
import { linformerFactors, meanPoolReduction, nystromFactors, performerFactors, softFactors } from './factors';

export interface ApproxOptions {
  config?: string | null;
  /** Square input side; default the config's first resolution. */
  resolution?: number;
  /** Checkpoint file; null or absent: seeded random weights. */
  checkpoint?: string | null;
  /** Image file; null or absent: a seeded random input tensor. */
  image?: string | null;
  resize?: 'eval' | 'none';
  /** Seed of random weights and of a random image (default 0). */
  seed?: number;
  /** 1-based stages to measure (default all). */
  stages?: number[];
  methods?: ApproxMethod[];
  /** Measure only the first K heads of each stage (the inverses still see every head: variant B and Nyström's Z₀ couple them). */
  heads?: number;
  /** Stages with more tokens are skipped: one head's S is N² float64 (default 4096 tokens, 134 MB). */
  maxTokens?: number;
  /**
   * Largest landmark count (and reduced-key count) of the size sweeps. Default min(256, ⌊N/4⌋): beyond
   * N/4 the m×m work of an iterated inverse outgrows the exact attention it stands for.
   */
  maxLandmarks?: number;
  newtonIterations?: number[];
  nystromIterations?: number[];
  performerFeatures?: number[];
  /** Performer draws per point (seeds s, s + 1, …; the model's performer_seed per stage as s). */
  performerSeeds?: number;
  linformerK?: number[];
  /** One line per step, for a long run's progress. */
  onProgress?: (line: string) => void;
}

/** A stage or option the model cannot take (the CLI turns it into exit status 2). */
export class ApproxInputError extends Error {}

export const DEFAULT_MAX_TOKENS = 4096;
export const DEFAULT_MAX_LANDMARKS = 256;
export const DEFAULT_NEWTON_ITERATIONS = [1, 2, 3, 5, 7, 10, 15, 20, 25, 30];
export const DEFAULT_NYSTROM_ITERATIONS = [1, 2, 3, 4, 6, 8, 10, 15, 20];
export const DEFAULT_PERFORMER_FEATURES = [8, 16, 32, 64, 128, 256, 512, 1024];
export const DEFAULT_LINFORMER_K = [8, 16, 32, 64, 128, 256];

/** Analytic MACs per head (docs/MATHS.md §6A), n tokens, d head width. */
export const APPROX_COST = {
  exact: (n: number, d: number) => 2 * n * n * d,
  soft: (n: number, m: number, d: number, T: number) =>
    3 * n * m * d + n * m * m + m * m * d + 2 * T * m ** 3 + n * d * d,
  nystrom: (n: number, m: number, d: number, T: number) => 4 * n * m * d + n * m * m + m * m * d + 4 * T * m ** 3,
  performer: (n: number, m: number, d: number) => 4 * n * m * d + n * m,
  linformer: (n: number, k: number, d: number) => 4 * n * k * d,
  /** Spatial reduction to t keys: the attention on them; a learned reduction adds its conv and K/V projection, a layer's share per head. */
  reduction: (n: number, t: number, d: number, learned: { dim: number; heads: number } | null) =>
    2 * n * t * d + (learned ? (n * learned.dim ** 2 + 2 * t * learned.dim ** 2) / learned.heads : 0),
};

const COST_TEXT: Record<ApproxMethod, string> = {
  soft: '3nmd + nm² + m²d + 2Tm³ + nd² (docs/MATHS.md §6A: distance counted once, T Newton iterations, the landmark conv; conv on V excluded)',
  nystrom: '4nmd + nm² + m²d + 4Tm³ (docs/MATHS.md §6A; the skip conv on V excluded)',
  performer: '4nmd + nm (docs/MATHS.md §6A)',
  linformer: '4nkd (docs/MATHS.md §6A)',
  softmax_sr:
    "2n·t·d for t reduced keys (docs/MATHS.md §6A's attention term; a stage's learned reduction adds its conv and K/V projection per head, (n·D² + 2t·D²)/h; mean pooling adds no MACs)",
};

const SOFT_KINDS = new Set(['soft', 'soft_norm']);

/**
 * Strides whose ⌊H/r⌋×⌊W/r⌋ grids are distinct, at least `minSide` landmarks a side and at most
 * `max` landmarks; for each grid the largest such stride, which drops the fewest remainder rows.
 */
export function strideSweep(H: number, W: number, minRatio: number, minSide: number, max: number): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  for (let r = Math.max(H, W); r >= minRatio; r--) {
    const lh = Math.floor(H / r);
    const lw = Math.floor(W / r);
    if (Math.min(lh, lw) < minSide || lh * lw > max || seen.has(lh * lw)) continue;
    seen.add(lh * lw);
    out.push(r);
  }
  return out;
}

const sorted = (xs: Iterable<number>) => [...new Set(xs)].sort((a, b) => a - b);
const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** E or F as lucidrains/linformer `init_` draws them: uniform(−1/√k, 1/√k), k = the projected length. */
export function linformerProjection(k: number, n: number, rand: () => number): Float64Array {
  const bound = 1 / Math.sqrt(k);
  return Float64Array.from({ length: k * n }, () => (2 * rand() - 1) * bound);
}

/** A point under construction: its heads filled one by one. */
interface Building {
  point: ApproxPoint;
  values: Map<number, ApproxHead>;
}

function newPoint(label: string, setting: ApproxPoint['setting'], model: boolean, macs: number): Building {
  return {
    point: {
      label,
      setting,
      model,
      macsPerHead: macs,
      heads: [],
      mean: { matRun: null, matExact: null, outRun: NaN, outExact: null },
    },
    values: new Map(),
  };
}

function finish(b: Building, heads: readonly number[]): ApproxPoint {
  const hs = heads.map((h) => b.values.get(h)!);
  const avg = (pick: (h: ApproxHead) => number | null): number | null => {
    const xs = hs.map(pick);
    return xs.some((x) => x === null) ? null : mean(xs as number[]);
  };
  return {
    ...b.point,
    heads: hs,
    mean: {
      matRun: avg((h) => h.matRun),
      matExact: avg((h) => h.matExact),
      outRun: avg((h) => h.outRun)!,
      outExact: avg((h) => h.outExact),
    },
  };
}

/** Rows [h·rows·d] of head `h`. */
const headOf = (t: Float64Array, h: number, rows: number, d: number) => t.subarray(h * rows * d, (h + 1) * rows * d);

interface InverseSize {
  build: Building[];
  ratio: number;
  m: number;
  /** Per analysed head: Ŝ's outer factors [N, m] (SOFT: K1 and K1; Nyström: F and Bᵀ), the run inverses, the exact one as balanced factors. */
  perHead: Map<
    number,
    {
      left: Float64Array;
      right: Float64Array;
      runs: Float64Array[];
      exact: { p: Float64Array; q: Float64Array; k: number };
    }
  >;
}

/** The stage's measurements, one head at a time (the N×N matrices of one head live at once). */
function analyseStage(
  p: PreparedModel,
  ops: StageOperands,
  o: ApproxOptions,
  methods: readonly ApproxMethod[],
): ApproxStage {
  const t0 = performance.now();
  const { stage, grid } = ops;
  const spec = p.spec;
  const n = ops.tokens;
  const d = ops.headDim;
  const H = stage.heads;
  const analysed = Array.from({ length: Math.min(H, o.heads ?? H) }, (_, i) => i);
  const isSoft = SOFT_KINDS.has(stage.attention) && ops.landmarks !== null;
  const hasGrid = n === grid.h * grid.w;
  // The model's landmark stride (sr_ratio, or the one a fixed landmark grid gives; square inputs, so one value).
  const ownRatio = landmarkStrides(stage, grid.h, grid.w)[0];
  const maxLandmarks = o.maxLandmarks ?? Math.min(DEFAULT_MAX_LANDMARKS, Math.floor(n / 4));
  const progress = (s: string) => o.onProgress?.(`stage ${stage.index}: ${s}`);
  const base: Omit<ApproxStage, 'methods' | 'skipped' | 'timeMs'> = {
    stage: stage.index,
    attention: stage.attention,
    grid,
    tokens: n,
    headDim: d,
    heads: H,
    headsAnalysed: analysed,
    landmarks:
      SOFT_KINDS.has(stage.attention) || stage.attention === 'nystrom'
        ? Math.floor(grid.h / ownRatio) * Math.floor(grid.w / ownRatio)
        : null,
    exactMacsPerHead: APPROX_COST.exact(n, d),
    operands: isSoft
      ? "SOFT's own Qs = W_q·x/d^¼ (queries and keys: SOFT has no key projection; the softmax methods take q = k = Qs·d^¼), its landmarks L, V = W_v·x; x = the activation entering the first block's attention"
      : `the layer's own q = W_q·x, k and v from W_kv·x (${stage.attention}), x = the activation entering the first block's attention`,
  };
  const maxTokens = o.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (n > maxTokens) {
    return {
      ...base,
      methods: [],
      skipped: `${n} tokens: one head's N×N float64 matrix is ${Math.round((n * n * 8) / 1e6)} MB; raise --max-tokens (now ${maxTokens}) to measure it`,
      timeMs: performance.now() - t0,
    };
  }

  const reports = new Map<ApproxMethod, ApproxMethodReport>();
  const report = (
    method: ApproxMethod,
    name: string,
    reference: 'gaussian' | 'softmax',
    notes: string[],
    skipped: string | null = null,
  ) => {
    const r: ApproxMethodReport = { method, name, reference, cost: COST_TEXT[method], notes, points: [], skipped };
    reports.set(method, r);
    return r;
  };
  const builds = new Map<ApproxMethod, Building[]>();

  // ── Phase A: the sizes, and the m×m inverses, which every head of the batch shares (variant B's
  //    step size and Nyström's Z₀ scale are maxima over the batch), so they are run on all heads.
  const soft: InverseSize[] = [];
  if (methods.includes('soft')) {
    if (!isSoft) {
      report(
        'soft',
        'SOFT',
        'gaussian',
        [],
        `SOFT approximates the Gaussian kernel of a stage's own queries (it has no key projection); this stage runs ${attentionName(stage.attention)}`,
      );
    } else {
      const norm = stage.attention === 'soft_norm';
      const { variant, maxIter } = spec.newton;
      const iterations = sorted([...(o.newtonIterations ?? DEFAULT_NEWTON_ITERATIONS), maxIter]);
      const ratios = p.weights
        ? [ownRatio]
        : sorted([ownRatio, ...strideSweep(grid.h, grid.w, 2, 2, maxLandmarks)]).reverse();
      const notes = [
        `S = exp(−dist(Qs, Qs)/2), N×N; K1 = exp(−dist(Qs, L)/2), K2 = exp(−dist(L, L)/2) with the model's landmarks L (conv r×r, LayerNorm, GELU), all from soft.ts's own layer (its kernel_method's distance; S's summed directly); V without the depthwise-conv residual.`,
        `run: K1·NR(K2)·K1ᵀ with the model's Newton–Raphson variant ${variant} iterated T times in float64 (the layer's own graph, attention/pinv.ts), over all heads at once as the model runs them; exact: K1·K2⁺·K1ᵀ with the float64 pseudo-inverse (one-sided Jacobi SVD, singular values below m·ε·σ_max dropped, applied as the balanced factors (K1·V·Σ^-½)(K1·U·Σ^-½)ᵀ).`,
      ];
      if (norm)
        notes.push(
          "Both inverses are scaled by D^-½ on each side, D the row sums of K2 (docs/MATHS.md §1.5), and measured against the same S — the scaling changes the product's scale by design, so its error includes that.",
        );
      notes.push(
        p.weights
          ? "A checkpoint has a landmark conv for its trained stride only (the stage's sr_ratio), so the size is not swept."
          : "Strides other than the model's use the landmark conv of the same random weights (official-style init, drawn per shape).",
      );
      report('soft', attentionName(stage.attention), 'gaussian', notes).modelIterations = maxIter;
      const list: Building[] = [];
      for (const r of ratios) {
        progress(
          `${attentionName(stage.attention)} r = ${r}: its layer's K1, K2 and Newton–Raphson ×${iterations.length}, and the pseudo-inverse`,
        );
        const F = softFactors(p, ops, r, iterations);
        if (!F) continue;
        const m = F.m;
        const size: InverseSize = { build: [], ratio: r, m, perHead: new Map() };
        for (const h of analysed) {
          const k1 = headOf(F.k1, h, n, m);
          const k2h = headOf(F.k2, h, m, m);
          // SOFT-Norm: D^-½·K2⁺·D^-½ with d_i = (Σ_j K2_ij)^-½, as symmetricNormalise scales the run's inverse.
          const scale = norm
            ? Float64Array.from(
                { length: m },
                (_, i) => 1 / Math.sqrt(k2h.subarray(i * m, (i + 1) * m).reduce((x, y) => x + y, 0)),
              )
            : null;
          size.perHead.set(h, {
            left: k1,
            right: k1,
            runs: F.inverses.map((w) => headOf(w, h, m, m)),
            exact: pseudoInverseFactors(k2h, m, scale),
          });
        }
        size.build = iterations.map((T) =>
          newPoint(
            `r = ${r} (m = ${m}), ${T} iterations`,
            { ratio: r, landmarks: m, iterations: T },
            r === ownRatio && T === maxIter,
            APPROX_COST.soft(n, m, d, T),
          ),
        );
        list.push(...size.build);
        soft.push(size);
      }
      builds.set('soft', list);
    }
  }

  const nystrom: InverseSize[] = [];
  if (methods.includes('nystrom')) {
    if (!hasGrid) {
      report('nystrom', 'Nyströmformer', 'softmax', [], 'its landmarks pool the token grid, which a cls token breaks');
    } else {
      const own = stage.attention === 'nystrom';
      const modelIterations = nystromSettings(stage, spec).iterations;
      const iterations = sorted([...(o.nystromIterations ?? DEFAULT_NYSTROM_ITERATIONS), modelIterations]);
      const ratios = sorted([ownRatio, ...strideSweep(grid.h, grid.w, 1, 2, maxLandmarks)]).reverse();
      const nystromReport = report('nystrom', 'Nyströmformer', 'softmax', [
        'Landmarks Q̃, K̃: r×r mean pooling of the scaled q and k on the token grid (attention/nystrom.ts); F = softmax(q·K̃ᵀ), A = softmax(Q̃·K̃ᵀ), B = softmax(Q̃·kᵀ).',
        `run: F·Z·B with Nyströmformer's iteration (the layer's own graph, attention/nystrom.ts, float64) over all heads at once (its Z₀ scale is a maximum over the batch); exact: F·A⁺·B with the float64 pseudo-inverse (as balanced factors, as for SOFT). At r = 1 every token is a landmark and the exact product is S itself.`,
        own
          ? "The stage's own setting (its sr_ratio, its iterations) is the point marked *."
          : `The stage's sr_ratio gives SOFT's landmark count, the SOFT paper's setting for its Nyströmformer (docs/MATHS.md §4.4); ${modelIterations} iterations is the reference's default.`,
        'The skip conv on V is left out of the errors and the MACs.',
      ]);
      nystromReport.modelIterations = modelIterations;
      const list: Building[] = [];
      for (const r of ratios) {
        const lh = Math.floor(grid.h / r);
        const lw = Math.floor(grid.w / r);
        const m = lh * lw;
        progress(
          `Nyströmformer r = ${r} (m = ${m}): its layer's F, A, B and iteration ×${iterations.length}, and the pseudo-inverse`,
        );
        // Its Z₀ scale is a maximum over the batch: the layer runs all heads, as the model would.
        const F = nystromFactors(p, ops, r, iterations);
        const size: InverseSize = { build: [], ratio: r, m, perHead: new Map() };
        for (const h of analysed) {
          size.perHead.set(h, {
            left: headOf(F.f, h, n, m),
            right: transpose(headOf(F.b, h, m, n), m, n),
            runs: F.z.map((z) => headOf(z, h, m, m)),
            exact: pseudoInverseFactors(headOf(F.a, h, m, m), m),
          });
        }
        size.build = iterations.map((T) =>
          newPoint(
            `r = ${r} (${lh}×${lw} = ${m} landmarks), ${T} iterations`,
            { ratio: r, landmarks: m, iterations: T },
            own && r === ownRatio && T === modelIterations,
            APPROX_COST.nystrom(n, m, d, T),
          ),
        );
        list.push(...size.build);
        nystrom.push(size);
      }
      builds.set('nystrom', list);
    }
  }

  let performer: {
    features: number;
    seeds: number[];
    factors: { left: Float64Array; right: Float64Array }[];
    build: Building;
  }[] = [];
  if (methods.includes('performer')) {
    const own = stage.attention === 'performer';
    const settings = performerSettings(stage, spec);
    const count = o.performerSeeds ?? 1;
    const seeds = Array.from({ length: count }, (_, i) => settings.seed + i);
    const features = sorted([
      ...(o.performerFeatures ?? DEFAULT_PERFORMER_FEATURES),
      ...(own ? [settings.features] : []),
    ]);
    report('performer', 'Performer', 'softmax', [
      `ω: ${count === 1 ? 'one draw' : `${count} draws (values are their means, spread min–max)`} per point, seeds from the model's performer_seed + stage − 1, of Gaussian orthogonal random features from the repository's generator (attention/performer.ts), φ with ε = ${PERFORMER_EPS} as there; Ŝ = D⁻¹φ(q)φ(k)ᵀ, exactly the weights its output uses.`,
      own
        ? "The stage's own feature count is the point marked *."
        : "lucidrains' default is m = ⌊d·ln d⌋ (110 for d = 32).",
    ]);
    performer = features.map((m) => ({
      features: m,
      seeds,
      factors: seeds.map((seed) => {
        progress(`Performer m = ${m} (seed ${seed}): its layer's φ(Q), φ(K) and D`);
        return performerFactors(p, ops, m, seed);
      }),
      build: newPoint(
        `m = ${m} features`,
        { features: m, seeds },
        own && m === settings.features,
        APPROX_COST.performer(n, m, d),
      ),
    }));
    builds.set(
      'performer',
      performer.map((x) => x.build),
    );
  }

  let linformer: { k: number; weights: Float64Array; fT: Float64Array; build: Building }[] = [];
  if (methods.includes('linformer')) {
    const own = stage.attention === 'linformer' && ops.linformer !== null;
    const seed = (o.seed ?? 0) + stage.index - 1;
    const ks = sorted([
      ...(o.linformerK ?? DEFAULT_LINFORMER_K).filter((k) => k <= n),
      ...(own ? [ops.linformer!.k] : []),
    ]);
    report('linformer', 'Linformer', 'softmax', [
      `Ŝ = softmax(q·(E·k)ᵀ/√d)·F, E and F ∈ ℝ^{k×N} shared by the heads; drawn (seed: the run's seed + stage − 1) as lucidrains/linformer linformer/linformer.py \`init_\` draws them: uniform(−1/√k, 1/√k). Untrained, so the error says little about a trained Linformer, which learns E and F.`,
      ...(own
        ? [
            `The point marked * is the layer's own k with its own E and F (${p.weights ? "the checkpoint's" : 'random init'}).`,
          ]
        : []),
    ]);
    linformer = ks.map((k) => {
      const mine = own && k === ops.linformer!.k;
      const rand = seededRandom(Math.imul(seed + 1, 0x9e3779b1) ^ k);
      const e = mine ? ops.linformer!.e : linformerProjection(k, n, rand);
      const f = mine ? ops.linformer!.f : linformerProjection(k, n, rand);
      progress(`Linformer k = ${k}: its layer's attention rows`);
      const factors = linformerFactors(p, ops, k, { e, f });
      return {
        k,
        weights: factors.weights,
        fT: transpose(factors.f, k, n),
        build: newPoint(
          mine ? `k = ${k} (the layer's E, F)` : `k = ${k}`,
          { k, ...(mine ? {} : { seeds: [seed] }) },
          mine,
          APPROX_COST.linformer(n, k, d),
        ),
      };
    });
    builds.set(
      'linformer',
      linformer.map((x) => x.build),
    );
  }

  /** Each point's output [heads, N, d]. */
  let reduction: { ratio: number; t: number; out: Float64Array; build: Building }[] = [];
  if (methods.includes('softmax_sr')) {
    if (!hasGrid) {
      report(
        'softmax_sr',
        attentionName('softmax_sr'),
        'softmax',
        [],
        'the reduction pools the token grid, which a cls token breaks',
      );
    } else {
      const learned = ops.reduced !== null;
      report('softmax_sr', attentionName('softmax_sr'), 'softmax', [
        'e_out only: PVT reduces the tokens by a conv and a LayerNorm before K and V, so the N×N matrix it implies is not linear in the tokens and has no fixed Ŝ.',
        'The reduction here: r×r mean pooling of k and v (no conv, no LayerNorm): the parameter-free reduction, since an untrained conv would say nothing.',
        ...(learned
          ? ["The point marked * is the stage's own learned reduction: its conv + LayerNorm and K/V projection."]
          : []),
      ]);
      const ratios = sorted(strideSweep(grid.h, grid.w, 2, 1, maxLandmarks)).reverse();
      reduction = ratios.map((r) => {
        const t = Math.floor(grid.h / r) * Math.floor(grid.w / r);
        return {
          ratio: r,
          t,
          out: meanPoolReduction(ops, r),
          build: newPoint(
            `r = ${r} (${t} keys, mean pooling)`,
            { ratio: r, landmarks: t },
            false,
            APPROX_COST.reduction(n, t, d, null),
          ),
        };
      });
      if (learned) {
        const { weights, v, tokens: t } = ops.reduced!;
        const out = new Float64Array(H * n * d);
        for (let h = 0; h < H; h++)
          out.set(matmulRect(headOf(weights, h, n, t), headOf(v, h, t, d), n, t, d), h * n * d);
        reduction.push({
          ratio: stage.srRatio,
          t,
          out,
          build: newPoint(
            `r = ${stage.srRatio} (${t} keys, the layer's conv + LayerNorm)`,
            { ratio: stage.srRatio, landmarks: t },
            true,
            APPROX_COST.reduction(n, t, d, { dim: stage.dim, heads: H }),
          ),
        });
      }
      builds.set(
        'softmax_sr',
        reduction.map((x) => x.build),
      );
    }
  }

  // ── Phase B: per head, its exact N×N attention(s), then every point against it.
  const iterationSweep = (
    size: InverseSize,
    h: number,
    ref: ExactAttention,
    left: Float64Array,
    right: Float64Array,
  ) => {
    const x = size.perHead.get(h)!;
    const lr = new LowRank(ref, left, right, size.m);
    const exact = lr.errorsFactored(x.exact.p, x.exact.q, x.exact.k);
    size.build.forEach((b, i) => {
      const run = lr.errors(x.runs[i]!);
      b.values.set(h, { head: h, matRun: run.mat, matExact: exact.mat, outRun: run.out, outExact: exact.out });
    });
  };
  for (const h of analysed) {
    const q = headOf(ops.q, h, n, d);
    const k = headOf(ops.k, h, n, d);
    const v = headOf(ops.v, h, n, d);
    const factors = (size: InverseSize) => size.perHead.get(h)!;
    if (soft.length) {
      progress(
        `head ${h}: ${attentionName(stage.attention)} against its Gaussian kernel (${soft.length} stride${soft.length > 1 ? 's' : ''})`,
      );
      // SOFT's queries are its keys: q is Qs here.
      const ref = exactAttention(exactGaussian(q, n, d), v, n, d);
      for (const size of soft) iterationSweep(size, h, ref, factors(size).left, factors(size).right);
    }
    if (!nystrom.length && !performer.length && !linformer.length && !reduction.length) continue;
    const ref = exactAttention(exactSoftmax(q, k, n, d), v, n, d);
    if (nystrom.length) progress(`head ${h}: Nyströmformer (${nystrom.length} landmark grids)`);
    for (const size of nystrom) iterationSweep(size, h, ref, factors(size).left, factors(size).right);
    if (performer.length) progress(`head ${h}: Performer (${performer.length} feature counts)`);
    for (const pt of performer) {
      const m = pt.features;
      const runs = pt.factors.map((f) => productErrors(ref, headOf(f.left, h, n, m), headOf(f.right, h, n, m), m));
      const mats = runs.map((r) => r.mat);
      const outs = runs.map((r) => r.out);
      pt.build.values.set(h, {
        head: h,
        matRun: mean(mats),
        matExact: null,
        outRun: mean(outs),
        outExact: null,
        ...(runs.length > 1
          ? {
              spread: {
                matRun: [Math.min(...mats), Math.max(...mats)],
                outRun: [Math.min(...outs), Math.max(...outs)],
              },
            }
          : {}),
      });
    }
    if (linformer.length) progress(`head ${h}: Linformer (${linformer.length} lengths)`);
    for (const pt of linformer) {
      const e = productErrors(ref, headOf(pt.weights, h, n, pt.k), pt.fT, pt.k);
      pt.build.values.set(h, { head: h, matRun: e.mat, matExact: null, outRun: e.out, outExact: null });
    }
    for (const pt of reduction) {
      const outRun = outputError(ref, headOf(pt.out, h, n, d));
      pt.build.values.set(h, { head: h, matRun: null, matExact: null, outRun, outExact: null });
    }
  }

  const methodsOut: ApproxMethodReport[] = [];
  for (const method of methods) {
    const r = reports.get(method);
    if (!r) continue;
    r.points = (builds.get(method) ?? []).map((b) => finish(b, analysed));
    methodsOut.push(r);
  }
  return { ...base, methods: methodsOut, skipped: null, timeMs: performance.now() - t0 };
}

/** The whole analysis: the model's activations, then each stage in turn. */
export async function analyseApprox(model: ModelSpec, o: ApproxOptions = {}): Promise<ApproxReport> {
  const t0 = performance.now();
  const resolution = o.resolution ?? model.resolutions[0] ?? 224;
  const indices = model.stages.map((s) => s.index);
  const stages = o.stages ?? indices;
  for (const s of stages)
    if (!indices.includes(s))
      throw new ApproxInputError(`stage ${s}: ${model.name} has stages ${indices[0]}–${indices[indices.length - 1]}`);
  const methods = o.methods ?? [...APPROX_METHODS];
  // The model itself cannot run at this size (a stage left without tokens or landmarks): the user's choice, not a bug.
  const unrunnable = (e: unknown) => {
    const message = (e as Error).message;
    return /^(modelGraph|SOFT attention|Nyström attention|Performer attention|Linformer attention|softmax_sr):/.test(
      message,
    )
      ? new ApproxInputError(`${model.name} at ${resolution}×${resolution}: ${message}`)
      : e;
  };
  let p: PreparedModel;
  let operands: Map<number, StageOperands>;
  try {
    p = await prepareModel(model, {
      resolution,
      checkpoint: o.checkpoint ?? null,
      image: o.image ?? null,
      ...(o.resize ? { resize: o.resize } : {}),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
    });
    o.onProgress?.(`activations: ${p.spec.name} at ${resolution} on the float64 reference runtime`);
    operands = stageOperands(p, stages);
  } catch (e) {
    throw unrunnable(e);
  }
  const tActivations = performance.now() - t0;
  const out: ApproxStage[] = [];
  for (const index of stages) {
    const stage = p.spec.stages.find((s) => s.index === index)!;
    const ops = operands.get(index);
    if (!ops) {
      out.push(
        skippedStage(
          stage,
          `${attentionName(stage.attention)} replaces softmax rather than approximating it: there is no exact counterpart to measure against`,
        ),
      );
      continue;
    }
    out.push(analyseStage(p, ops, o, methods));
  }
  const random = p.weights === null;
  const weights = random
    ? `random (seed ${p.seed}, official-style init)`
    : `checkpoint ${p.checkpoint} (${p.checkpointSource})`;
  const image = p.imageFile ? `${p.imageFile}, ${p.transform}` : p.transform;
  return {
    model: p.spec.name,
    config: o.config ?? null,
    resolution,
    input: {
      weights,
      checkpoint: p.checkpoint,
      image: p.imageFile,
      seed: random || !p.imageFile ? p.seed : null,
      description: `weights ${weights}; input ${image}`,
    },
    arithmetic: 'float64',
    newton: { variant: p.spec.newton.variant, iterations: p.spec.newton.maxIter },
    stages: out,
    notes: [
      'e_mat = ‖S − Ŝ‖_F/‖S‖_F and e_out = ‖S·V − Ŝ·V‖_F/‖S·V‖_F per (image, head), in float64; "run" is Ŝ as the model computes it, "exact" puts the float64 pseudo-inverse in place of its iteration, so run − exact is the iteration\'s share of the error.',
      "Q, K, V are the first block's of each stage, from the activations entering its attention.",
      'MACs per head: the docs/MATHS.md §6A formulas, attention core only (projections and skip convs excluded).',
      ...(random
        ? [
            "Random weights: the activations are not a trained model's (for instance, softmax over near-zero scores is nearly uniform, easy for every low-rank method, while SOFT's Gaussian of spread-out queries is nearly the identity, which no few landmarks capture); give a checkpoint for the errors of a trained model.",
          ]
        : []),
    ],
    timingMs: { activations: tActivations, total: performance.now() - t0 },
  };
}

function skippedStage(stage: StageSpec, why: string): ApproxStage {
  return {
    stage: stage.index,
    attention: stage.attention,
    grid: { h: 0, w: 0 },
    tokens: 0,
    headDim: stage.headDim,
    heads: stage.heads,
    headsAnalysed: [],
    landmarks: null,
    exactMacsPerHead: 0,
    operands: '',
    methods: [],
    skipped: why,
    timeMs: 0,
  };
}
