/**
 * Type checks of config values against their KeyDef, with a diagnostic on the exact
 * value or list item that is wrong.
 */
import type { KeyDef, ValueType } from './format';
import type { ConfigValue } from './parse';
import type { Span } from './span';
import { suggest } from './suggest';

export type Severity = 'error' | 'warning' | 'information' | 'hint';

export interface ConfigDiagnostic {
  span: Span;
  severity: Severity;
  /** Stable code, e.g. `unknown-key`, `wrong-type`. */
  code: string;
  message: string;
  /** The config key the diagnostic concerns, when there is one. */
  key?: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; diagnostics: ConfigDiagnostic[] };

type Typed = string | number | null | number[] | string[];

function describe(v: ConfigValue): string {
  if (v.kind === 'list') return 'a list';
  if (v.kind === 'map') return 'a mapping';
  if (v.value === null) return 'nothing (null)';
  if (typeof v.value === 'string') return `the string "${v.value}"`;
  return `${typeof v.value} ${String(v.value)}`;
}

function fail(span: Span, key: string, code: string, message: string): Checked<never> {
  return { ok: false, diagnostics: [{ span, severity: 'error', code, key, message }] };
}

function checkNumber(
  v: ConfigValue,
  key: string,
  integer: boolean,
  min: number,
  max: number,
  exclusiveMin = false,
  where = '',
): Checked<number> {
  const want = integer ? 'an integer' : 'a number';
  if (v.kind !== 'scalar' || typeof v.value !== 'number' || v.quoted) {
    return fail(v.span, key, 'wrong-type', `\`${key}\`${where} must be ${want}, got ${describe(v)}.`);
  }
  const n = v.value;
  if (!Number.isFinite(n)) return fail(v.span, key, 'out-of-range', `\`${key}\`${where} must be finite, got ${n}.`);
  if (integer && !Number.isInteger(n))
    return fail(v.span, key, 'wrong-type', `\`${key}\`${where} must be an integer, got ${n}.`);
  if (n < min || n > max || (exclusiveMin && n === min)) {
    const lo = exclusiveMin ? `greater than ${min}` : `at least ${min}`;
    return fail(v.span, key, 'out-of-range', `\`${key}\`${where} must be ${lo} and at most ${max}, got ${n}.`);
  }
  return { ok: true, value: n };
}

function checkEnum(v: ConfigValue, key: string, values: readonly string[], where = ''): Checked<string> {
  if (v.kind !== 'scalar' || typeof v.value !== 'string') {
    return fail(
      v.span,
      key,
      'wrong-type',
      `\`${key}\`${where} must be one of ${values.join(', ')}; got ${describe(v)}.`,
    );
  }
  if (!values.includes(v.value)) {
    const near = suggest(v.value, values);
    const hint = near.length ? ` Did you mean ${near.map((s) => `\`${s}\``).join(' or ')}?` : '';
    return fail(v.span, key, 'bad-enum', `\`${key}\`${where}: "${v.value}" is not one of ${values.join(', ')}.${hint}`);
  }
  return { ok: true, value: v.value };
}

function checkList<T>(v: ConfigValue, key: string, item: (x: ConfigValue, where: string) => Checked<T>): Checked<T[]> {
  if (v.kind !== 'list') return fail(v.span, key, 'wrong-type', `\`${key}\` must be a list, got ${describe(v)}.`);
  if (v.items.length === 0) return fail(v.span, key, 'wrong-type', `\`${key}\` must not be empty.`);
  const out: T[] = [];
  const diagnostics = [];
  for (let i = 0; i < v.items.length; i++) {
    const r = item(v.items[i]!, ` (item ${i + 1})`);
    if (r.ok) out.push(r.value);
    else diagnostics.push(...r.diagnostics);
  }
  return diagnostics.length ? { ok: false, diagnostics } : { ok: true, value: out };
}

export function checkValue(def: KeyDef, v: ConfigValue): Checked<Typed> {
  const t: ValueType = def.type;
  const key = def.key;
  switch (t.kind) {
    case 'enum':
      return checkEnum(v, key, t.values);
    case 'string':
      if (v.kind !== 'scalar' || typeof v.value !== 'string' || v.value === '')
        return fail(v.span, key, 'wrong-type', `\`${key}\` must be a file path, got ${describe(v)}.`);
      return { ok: true, value: v.value };
    case 'integer':
      return checkNumber(v, key, true, t.min, t.max);
    case 'number':
      if (t.nullable && v.kind === 'scalar' && v.value === null) return { ok: true, value: null };
      return checkNumber(v, key, false, t.min, t.max, t.exclusiveMin);
    case 'integerList':
      return checkList(v, key, (x, w) => checkNumber(x, key, true, t.min, t.max, false, w));
    case 'numberList':
      return checkList(v, key, (x, w) => checkNumber(x, key, false, t.min, t.max, t.exclusiveMin, w));
    case 'integerOrList':
      if (v.kind === 'list') return checkList(v, key, (x, w) => checkNumber(x, key, true, t.min, t.max, false, w));
      return mapChecked(checkNumber(v, key, true, t.min, t.max), (n) => [n]);
    case 'enumOrList':
      if (v.kind === 'list') return checkList(v, key, (x, w) => checkEnum(x, key, t.values, w));
      return checkEnum(v, key, t.values);
    case 'stringList':
      return checkList(v, key, (x, w) =>
        x.kind === 'scalar' && typeof x.value === 'string' && x.value !== ''
          ? { ok: true, value: x.value }
          : fail(x.span, key, 'wrong-type', `\`${key}\`${w} must be a file path, got ${describe(x)}.`),
      );
  }
}

function mapChecked<A, B>(c: Checked<A>, f: (a: A) => B): Checked<B> {
  return c.ok ? { ok: true, value: f(c.value) } : c;
}
