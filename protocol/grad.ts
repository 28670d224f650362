/**
 * Gradient diagnostics of one training step (`vitlens grad`, `vitlens/grad`): the loss, and the
 * L2 norm of the loss's gradient for every parameter and for the input. Plain JSON, like
 * results.ts and infer.ts; `gradText` renders it for a terminal or an output channel.
 */
import type { RuntimeDescription } from './results';

/** The warning rule, with its thresholds, so that every reader applies the same one. */
export const GRAD_RULE = {
  /** A parameter's gradient norm above this multiple of the median over all parameters: exploding. */
  explodingRatio: 1e3,
  /** Below this multiple of the median (a zero gradient included): vanishing. */
  vanishingRatio: 1e-6,
  /**
   * SOFT's analytic Newton gradient differing from the through-iteration one by more than this
   * (relative L2 over a stage's parameter gradients): the inverse has not converged.
   */
  newtonRelativeDifference: 1e-2,
} as const;

export type GradFlag = 'exploding' | 'vanishing' | 'non-finite';

export interface GradParameter {
  /** State-dict key (the engine's: a timm ViT's `qkv` is read as `q` and `kv`). */
  key: string;
  shape: number[];
  elements: number;
  /** 1-based stage whose layers read it; null after the last stage (final norm, head, UFO's class-attention blocks). */
  stage: number | null;
  /** ‖∂L/∂θ‖₂ (NaN / Infinity when an element is, which JSON writes as null; `flag` then says non-finite). */
  gradNorm: number;
  gradMaxAbs: number;
  /** ‖θ‖₂. */
  paramNorm: number;
  /** gradNorm / paramNorm (the relative step plain SGD with learning rate 1 would take); null when θ = 0. */
  ratio: number | null;
  /** gradNorm / the median gradNorm over all parameters; null when the median is 0 or not finite. */
  toMedian: number | null;
  flag: GradFlag | null;
}

/**
 * SOFT's Newton inverse differentiated analytically (−Vᵀ·G·Vᵀ, the derivative only where V has
 * converged to P⁻¹) against back-propagation through every iteration, for one stage.
 */
export interface NewtonGradientCheck {
  stage: number;
  attention: string;
  variant: string;
  iterations: number;
  /** Parameters of the stage compared. */
  parameters: number;
  /**
   * ‖g_analytic − g_unrolled‖₂ / ‖g_unrolled‖₂ over the stage's parameter gradients, concatenated.
   * A stage's gradients also carry every later SOFT stage's difference (back-propagation passes
   * through them); the last SOFT stage's is its own alone.
   */
  relativeDifference: number;
}

export interface GradWarning {
  /** The parameter (state-dict key) or stage it is about; null for the whole model. */
  key: string | null;
  stage: number | null;
  kind: GradFlag | 'newton' | 'loss';
  message: string;
}

export interface GradItem {
  name: string;
  kind: 'image' | 'tensor';
  label: number;
  labelName: string;
  logits: number[];
  /** −log softmax(logits)[label]: this item's share of the loss, before the mean. */
  loss: number;
  predicted: { index: number; label: string; probability: number };
}

export interface GradReport {
  model: string;
  config: string | null;
  checkpoint: { file: string; source: string; tensors: number; elements: number } | null;
  weights: string;
  runtime: RuntimeDescription;
  /** The arithmetic the numbers come from. */
  dtype: 'float64' | 'float32';
  input: { batch: number; height: number; width: number; transform: string };
  numClasses: number;
  /** `eval`: BatchNorm with its running statistics (dropout is never in the graphs); `train`: batch statistics. */
  mode: 'eval' | 'train';
  /** How SOFT's Newton inverse was differentiated; null when the model has no SOFT stage. */
  newtonBackward: 'analytic' | 'unrolled' | null;
  /** Mean over the batch of the cross-entropy −log softmax(logits)[label] (natural log, as F.cross_entropy). */
  loss: number;
  lossDefinition: string;
  items: GradItem[];
  /** Every parameter the loss reads, in state-dict order; BatchNorm running statistics are buffers, not listed. */
  parameters: GradParameter[];
  totals: { parameters: number; elements: number; gradNorm: number; paramNorm: number; medianGradNorm: number };
  /** ∂L/∂input: over the whole [B, C, H, W] batch, and per channel (over batch and pixels). */
  inputGradient: { norm: number; maxAbs: number; channelNorms: number[] };
  /** One entry per SOFT stage when the Newton inverse is differentiated analytically; else empty. */
  newton: NewtonGradientCheck[];
  /** What the warnings test (GRAD_RULE in words). */
  rule: string;
  warnings: GradWarning[];
  timingMs: { checkpoint: number; preprocess: number; build: number; run: number; newtonCheck: number };
  notes: string[];
}

const sci = (x: number, digits = 3): string => (Number.isFinite(x) ? x.toExponential(digits) : String(x));

/** The report as text: a header, the loss and predictions, one line per parameter, the input gradient, warnings. */
export function gradText(r: GradReport): string {
  const out = [`${r.config ?? r.model}: ${r.model}, weights: ${r.weights}`];
  out.push(`runtime: ${r.runtime.runtime} on ${r.runtime.device} (${r.dtype})`);
  out.push(`input: batch ${r.input.batch}, ${r.input.height}×${r.input.width}; transform: ${r.input.transform}`);
  out.push(
    `mode: ${r.mode === 'eval' ? 'eval (BatchNorm running statistics)' : 'train (BatchNorm batch statistics)'}` +
      (r.newtonBackward ? `; SOFT Newton inverse differentiated ${r.newtonBackward}` : ''),
  );
  out.push('', `loss: ${r.loss.toPrecision(10)} (${r.lossDefinition})`);
  for (const it of r.items)
    out.push(
      `  ${it.name}: label ${it.label} (${it.labelName}), loss ${it.loss.toPrecision(6)}; predicted ${it.predicted.index} (${it.predicted.label}, ${(it.predicted.probability * 100).toFixed(2)} %)`,
    );
  const width = Math.max(9, ...r.parameters.map((p) => p.key.length));
  out.push(
    '',
    `${'parameter'.padEnd(width)}  ${'shape'.padEnd(14)}  ${'‖grad‖'.padStart(10)}  ${'‖param‖'.padStart(10)}  ${'grad/param'.padStart(10)}  ${'/median'.padStart(10)}`,
  );
  for (const p of r.parameters)
    out.push(
      `${p.key.padEnd(width)}  ${p.shape.join('×').padEnd(14)}  ${sci(p.gradNorm).padStart(10)}  ${sci(p.paramNorm).padStart(10)}  ${(p.ratio === null ? '—' : sci(p.ratio)).padStart(10)}  ${(p.toMedian === null ? '—' : sci(p.toMedian, 2)).padStart(10)}${p.flag ? `  ${p.flag.toUpperCase()}` : ''}`,
    );
  const t = r.totals;
  out.push(
    `${t.parameters} parameter tensors, ${t.elements.toLocaleString('en-US')} elements: ‖grad‖ ${sci(t.gradNorm)}, ‖param‖ ${sci(t.paramNorm)}, median ‖grad‖ ${sci(t.medianGradNorm)}`,
  );
  const ig = r.inputGradient;
  out.push(
    '',
    `input gradient: ‖∂L/∂x‖ ${sci(ig.norm)}, max |∂L/∂x| ${sci(ig.maxAbs)}; per channel ${ig.channelNorms.map((c) => sci(c)).join(', ')}`,
  );
  if (r.newton.length) {
    out.push('', 'SOFT Newton inverse: analytic gradient vs through the iterations (relative L2 difference):');
    for (const n of r.newton)
      out.push(
        `  stage ${n.stage} (${n.attention}, variant ${n.variant}, ${n.iterations} iterations, ${n.parameters} parameters): ${sci(n.relativeDifference, 2)}`,
      );
  }
  out.push('', `warnings: ${r.rule}`);
  if (!r.warnings.length) out.push('  none');
  for (const w of r.warnings) out.push(`warning: ${w.message}`);
  const ms = (x: number) => x.toFixed(0);
  const tm = r.timingMs;
  out.push(
    '',
    `time (ms): checkpoint ${ms(tm.checkpoint)}, preprocess ${ms(tm.preprocess)}, graph ${ms(tm.build)}, forward+backward ${ms(tm.run)}` +
      (r.newton.length ? `, Newton check ${ms(tm.newtonCheck)}` : ''),
  );
  for (const n of r.notes) out.push(`note: ${n}`);
  return out.join('\n');
}
