/**
 * Compares loaded weights with the parameter list a model expects (key and shape), the
 * way `load_state_dict(strict=True)` would, and renders the differences for people.
 */

export interface ExpectedTensor {
  key: string;
  shape: readonly number[];
}

export interface ShapeMismatch {
  key: string;
  expected: number[];
  actual: number[];
}

export interface CheckResult {
  /** Expected keys the checkpoint lacks, in the model's order. */
  missing: string[];
  /** Checkpoint keys the model does not have, in the checkpoint's order. */
  unexpected: string[];
  mismatched: ShapeMismatch[];
}

export function checkAgainst(
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  expected: readonly ExpectedTensor[],
): CheckResult {
  const wanted = new Set(expected.map((e) => e.key));
  const result: CheckResult = {
    missing: [],
    unexpected: [...tensors.keys()].filter((k) => !wanted.has(k)),
    mismatched: [],
  };
  for (const { key, shape } of expected) {
    const actual = tensors.get(key)?.shape;
    if (!actual) result.missing.push(key);
    else if (actual.length !== shape.length || actual.some((n, i) => n !== shape[i])) {
      result.mismatched.push({ key, expected: [...shape], actual: [...actual] });
    }
  }
  return result;
}

export function isCleanCheck(r: CheckResult): boolean {
  return r.missing.length === 0 && r.unexpected.length === 0 && r.mismatched.length === 0;
}

/** Lines listed per category before the rest is summarised as a count. */
const MAX_LISTED = 20;

function section(title: string, lines: string[]): string[] {
  if (!lines.length) return [];
  const shown = lines.slice(0, MAX_LISTED).map((l) => `  ${l}`);
  if (lines.length > MAX_LISTED) shown.push(`  … and ${lines.length - MAX_LISTED} more`);
  return [`${title} (${lines.length}):`, ...shown];
}

/** A multi-line report: one line when everything matches, else one section per problem. */
export function formatCheckReport(r: CheckResult, expectedCount: number): string {
  if (isCleanCheck(r)) return `All ${expectedCount} expected tensors are present with the expected shapes.`;
  const shape = (s: number[]) => `[${s.join(', ')}]`;
  return [
    ...section('Missing from the checkpoint', r.missing),
    ...section('Not used by the model', r.unexpected),
    ...section(
      'Shape mismatch',
      r.mismatched.map((m) => `${m.key}: checkpoint ${shape(m.actual)}, model expects ${shape(m.expected)}`),
    ),
  ].join('\n');
}
