/**
 * ImageNet-1k class names and top-k predictions from logits.
 *
 * The names (imagenet-classes.json) are copied by scripts/copy-imagenet-classes.ts from
 * @tensorflow-models/mobilenet's dist/imagenet_classes.js (Copyright 2019 Google LLC,
 * Apache License 2.0): index i is the i-th ILSVRC-2012 synset in sorted WordNet-id order,
 * the order timm and torchvision models are trained with.
 */
import imagenet from './imagenet-classes.json';

/** The 1000 class names, by index ("tench, Tinca tinca", …, "toilet tissue, …"). */
export const IMAGENET_CLASSES: readonly string[] = Object.freeze(imagenet.classes.slice());

export interface Prediction {
  index: number;
  label: string;
  /** Softmax probability over all classes. */
  probability: number;
  logit: number;
}

/**
 * Label of class `index` for a model with `numClasses` outputs: the ImageNet name for 1000
 * classes, otherwise "class <index>" (a fine-tuned head's names are not known here).
 */
export function classLabel(index: number, numClasses: number): string {
  return numClasses === IMAGENET_CLASSES.length ? (IMAGENET_CLASSES[index] ?? `class ${index}`) : `class ${index}`;
}

/**
 * Softmax in float64, shifted by the maximum so that no exp overflows (logits of 1000 are
 * fine). −Infinity entries (masked classes) get probability 0; NaN or +Infinity throw.
 */
export function softmax(logits: ArrayLike<number>): Float64Array {
  const n = logits.length;
  if (n === 0) throw new RangeError('softmax of an empty vector');
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = logits[i]!;
    if (Number.isNaN(v) || v === Infinity) throw new RangeError(`logit ${i} is ${v}`);
    if (v > max) max = v;
  }
  if (max === -Infinity) throw new RangeError('every logit is -Infinity');
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    p[i] = Math.exp(logits[i]! - max);
    sum += p[i]!;
  }
  for (let i = 0; i < n; i++) p[i] = p[i]! / sum;
  return p;
}

/**
 * The k most likely classes, most likely first (ties: lower index first). Labels come from
 * `labels` when given, else classLabel().
 */
export function topK(logits: ArrayLike<number>, k = 5, labels?: readonly string[]): Prediction[] {
  const p = softmax(logits);
  const n = logits.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  return order.slice(0, Math.max(0, Math.min(k, n))).map((index) => ({
    index,
    label: labels?.[index] ?? classLabel(index, n),
    probability: p[index]!,
    logit: logits[index]!,
  }));
}
