import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { parse } from 'yaml';
import { CONFIG_KEYS } from '../server/core/config/format';
import { configJsonSchema } from '../server/core/config/schema';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SCHEMA_FILE = join(ROOT, 'schema', 'vitlens-config.schema.json');
const SOFT_CONFIGS = join(ROOT, 'fixtures', 'configs', 'soft');

/** The committed file is what editors load, so the checks below validate against it. */
const committed = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Schema;

/**
 * A deliberately independent validator for the draft-07 subset the generator uses,
 * so the schema is checked by something other than the code that wrote it.
 */
interface Schema {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  items?: Schema;
  minItems?: number;
  anyOf?: Schema[];
  oneOf?: Schema[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean;
}

const ANNOTATIONS = new Set(['$schema', 'title', 'description', 'markdownDescription', 'default']);
const CHECKED = new Set([
  'type',
  'enum',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'minLength',
  'items',
  'minItems',
  'anyOf',
  'oneOf',
  'properties',
  'additionalProperties',
]);

function typeOf(value: unknown): string[] {
  if (value === null) return ['null'];
  if (Array.isArray(value)) return ['array'];
  if (typeof value === 'number') return Number.isInteger(value) ? ['integer', 'number'] : ['number'];
  return [typeof value];
}

/** Returns one message per violation, each prefixed with the JSON pointer of the value. */
function validate(schema: Schema, value: unknown, at = ''): string[] {
  // A keyword this validator does not know would be silently ignored, making a pass meaningless.
  for (const keyword of Object.keys(schema)) {
    if (!ANNOTATIONS.has(keyword) && !CHECKED.has(keyword))
      throw new Error(`${at || '/'}: validator does not support "${keyword}"`);
  }
  const errors: string[] = [];
  if (schema.type !== undefined) {
    const allowed = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!typeOf(value).some((t) => allowed.includes(t)))
      return [`${at}: expected ${allowed.join(' or ')}, got ${JSON.stringify(value)}`];
  }
  if (schema.enum !== undefined && !schema.enum.includes(value))
    errors.push(`${at}: ${JSON.stringify(value)} is not in the enum`);
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum)
      errors.push(`${at}: ${value} < minimum ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum)
      errors.push(`${at}: ${value} > maximum ${schema.maximum}`);
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum)
      errors.push(`${at}: ${value} <= exclusiveMinimum ${schema.exclusiveMinimum}`);
  }
  if (typeof value === 'string' && schema.minLength !== undefined && value.length < schema.minLength)
    errors.push(`${at}: shorter than ${schema.minLength}`);
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      errors.push(`${at}: fewer than ${schema.minItems} items`);
    const items = schema.items;
    if (items !== undefined) value.forEach((item, i) => errors.push(...validate(items, item, `${at}/${i}`)));
  }
  if (schema.anyOf !== undefined) {
    const passing = schema.anyOf.filter((s) => validate(s, value, at).length === 0).length;
    if (passing === 0) errors.push(`${at}: matches no anyOf branch`);
  }
  if (schema.oneOf !== undefined) {
    const passing = schema.oneOf.filter((s) => validate(s, value, at).length === 0).length;
    if (passing !== 1) errors.push(`${at}: matches ${passing} oneOf branches, not exactly 1`);
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [key, v] of Object.entries(value)) {
      const property = schema.properties?.[key];
      if (property !== undefined) errors.push(...validate(property, v, `${at}/${key}`));
      else if (schema.additionalProperties === false) errors.push(`${at}/${key}: not allowed`);
    }
  }
  return errors;
}

test('the committed schema file is the one configJsonSchema() generates', () => {
  assert.deepEqual(committed, configJsonSchema(), 'schema/vitlens-config.schema.json is stale: run npm run schema');
});

test("the committed schema file has the generator's exact formatting", () => {
  assert.equal(
    readFileSync(SCHEMA_FILE, 'utf8'),
    JSON.stringify(configJsonSchema(), null, 2) + '\n',
    'schema/vitlens-config.schema.json is not formatted as generated: run npm run schema',
  );
});

test('schema properties are exactly the CONFIG_KEYS', () => {
  assert.deepEqual(Object.keys(committed.properties ?? {}).sort(), CONFIG_KEYS.map((k) => k.key).sort());
});

test('the schema is open (extra keys allowed) and requires no key', () => {
  assert.equal(committed.additionalProperties, true);
  assert.equal('required' in committed, false);
});

test('every official SOFT config validates', () => {
  const files = readdirSync(SOFT_CONFIGS).filter((f) => f.endsWith('.yaml'));
  assert.equal(files.length, 15);
  for (const file of files) {
    const config: unknown = parse(readFileSync(join(SOFT_CONFIGS, file), 'utf8'));
    assert.deepEqual(validate(committed, config), [], file);
  }
});

test('custom configs with ViT Lens keys and extra keys validate', () => {
  const valid: unknown[] = [
    {},
    { model: 'soft_norm_small', img_size: 384, attention: 'soft_norm', newton_variant: 'B', clip_grad: null },
    {
      model: 'soft_tiny',
      img_size: [224, 512],
      attention: ['soft', 'soft', 'softmax_sr', 'softmax'],
      embed_dims: [64, 128, 320, 512],
      num_heads: [1, 2, 5, 8],
      depths: [1, 2, 3, 2],
      num_classes: 10,
    },
    {
      mlp_ratios: [8, 8, 4, 0.5],
      sr_ratios: [8, 4, 2, 1],
      checkpoint: 'w.safetensors',
      images: ['cat.png'],
      future_official_key: 1,
    },
  ];
  for (const config of valid) assert.deepEqual(validate(committed, config), [], JSON.stringify(config));
});

test('invalid values are rejected at the offending key', () => {
  const invalid: [Record<string, unknown>, string][] = [
    [{ model: 'soft_tinny' }, '/model'],
    [{ newton_maxiter: 0 }, '/newton_maxiter'],
    [{ kernel_method: 'cpu' }, '/kernel_method'],
    [{ embed_dims: [] }, '/embed_dims'],
    [{ img_size: [224, 'x'] }, '/img_size'],
    [{ attention: ['soft', 'bogus'] }, '/attention'],
    [{ clip_grad: 'a' }, '/clip_grad'],
    [{ lr: 0 }, '/lr'],
    [{ depths: [2, 2.5] }, '/depths/1'],
    [{ checkpoint: '' }, '/checkpoint'],
  ];
  for (const [config, pointer] of invalid) {
    const errors = validate(committed, config);
    assert.ok(errors.length > 0, `${JSON.stringify(config)} should be rejected`);
    for (const e of errors) assert.ok(e.startsWith(`${pointer}:`), `${JSON.stringify(config)}: unexpected error ${e}`);
  }
});
