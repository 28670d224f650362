/** Shape arithmetic shared by the profile (counting) and the engine (computing). */

/** Number of elements of a tensor of this shape (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
