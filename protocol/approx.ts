/**
 * Approximation quality (`vitlens approx`): how far each approximate attention is from the exact
 * attention it stands for, on the same real Q, K, V of a model, per stage and head, as a function of
 * its hyperparameter, each point with its analytic cost, so accuracy can be charted against MACs.
 * Plain JSON: no classes, no functions.
 */

/** The approximations measured. `soft` stands for the stage's own SOFT variant (SOFT or SOFT-Norm). */
export const APPROX_METHODS = ['soft', 'nystrom', 'performer', 'linformer', 'softmax_sr'] as const;
export type ApproxMethod = (typeof APPROX_METHODS)[number];

/**
 * Relative Frobenius errors of one head at one point, all in float64:
 * mat = ‖S − Ŝ‖_F / ‖S‖_F (the N×N matrices), out = ‖S·V − Ŝ·V‖_F / ‖S·V‖_F (the outputs, V without
 * any conv skip). `Run` is Ŝ as the model computes it (its iteration count, its random draw);
 * `Exact` puts the float64 pseudo-inverse in place of the iteration (SOFT, Nyströmformer), so
 * run − exact is the iteration's share and exact the low-rank share of the error. null where a
 * value does not apply (no N×N matrix for spatial reduction, no iteration for Performer/Linformer).
 */
export interface ApproxErrors {
  matRun: number | null;
  matExact: number | null;
  outRun: number;
  outExact: number | null;
}

export interface ApproxHead extends ApproxErrors {
  head: number;
  /** Several random draws (Performer seeds): min and max over them; the values above are their means. */
  spread?: { matRun: [number, number] | null; outRun: [number, number] };
}

/** One hyperparameter setting of a method. */
export interface ApproxPoint {
  /** The setting in words: "r = 8 (m = 49 landmarks), 20 iterations". */
  label: string;
  setting: {
    /** Landmark stride r (SOFT, Nyströmformer) or reduction ratio (spatial reduction). */
    ratio?: number;
    /** Landmarks m (SOFT, Nyströmformer; the reduced tokens of spatial reduction). */
    landmarks?: number;
    /** Iterations of the pseudo-inverse (Newton–Raphson for SOFT, Nyströmformer's own). */
    iterations?: number;
    /** Performer's random features. */
    features?: number;
    /** Linformer's projected length. */
    k?: number;
    /** Seeds of the random draws (Performer's ω, Linformer's E and F). */
    seeds?: number[];
  };
  /** The setting the model itself runs (the config's). */
  model: boolean;
  /** Analytic MACs per head of this setting (the method's `cost` formula). */
  macsPerHead: number;
  heads: ApproxHead[];
  /** Means over the heads analysed. */
  mean: ApproxErrors;
}

export interface ApproxMethodReport {
  method: ApproxMethod;
  /** The attention's name as shown ("SOFT-Norm", "Nyströmformer" …). */
  name: string;
  /** The exact attention it is measured against: SOFT's Gaussian kernel exp(−dist(Qs, Qs)/2), or softmax(q·kᵀ/√d). */
  reference: 'gaussian' | 'softmax';
  /** The formula behind macsPerHead, in words and symbols. */
  cost: string;
  /** What this method's numbers mean and the choices behind them. */
  notes: string[];
  /**
   * SOFT and Nyströmformer: the iteration count the model runs (newton_maxiter; nystrom_iterations,
   * or the reference's default on a stage that runs another attention), always among the points'
   * counts: the count the dashboard reads the size sweep at. Absent for methods without an iteration.
   */
  modelIterations?: number;
  points: ApproxPoint[];
  /** Why the method was not measured on this stage, else null. */
  skipped: string | null;
}

export interface ApproxStage {
  stage: number;
  /** The stage's own attention kind. */
  attention: string;
  grid: { h: number; w: number };
  /** Tokens N (with a cls token where the stage has one). */
  tokens: number;
  headDim: number;
  heads: number;
  /** The heads measured (all, or the first few with a --heads limit). */
  headsAnalysed: number[];
  /** The model's landmark count at this grid for SOFT/Nyström stages, else null. */
  landmarks: number | null;
  /** MACs per head of the exact attention, 2·N²·d (§6A). */
  exactMacsPerHead: number;
  /** Where Q, K and V come from, in words. */
  operands: string;
  methods: ApproxMethodReport[];
  /** Why the stage was not measured, else null. */
  skipped: string | null;
  timeMs: number;
}

export interface ApproxReport {
  model: string;
  config: string | null;
  resolution: number;
  input: {
    /** Where the weights come from: "checkpoint fixtures/ref/tiny_soft.pth (…)" or "random (seed 0, official-style init)". */
    weights: string;
    checkpoint: string | null;
    /** The image file, or null for a seeded random one. */
    image: string | null;
    /** Seed of the random weights and/or image; null when neither is random. */
    seed: number | null;
    /** The whole input in one line. */
    description: string;
  };
  /** Everything is computed in float64 (activations on the float64 reference runtime). */
  arithmetic: 'float64';
  newton: { variant: 'A' | 'B'; iterations: number };
  stages: ApproxStage[];
  notes: string[];
  timingMs: { activations: number; total: number };
}
