/**
 * The published JSON Schema (draft-07) of the ViT Lens config format, built from
 * CONFIG_KEYS so that editors without the language server (e.g. the Red Hat YAML
 * extension through `yamlValidation`) check the same types and ranges.
 * scripts/gen-schema.ts writes it to schema/vitlens-config.schema.json.
 */
import { CONFIG_KEYS, type KeyDef, type ValueType } from './format';

/** The draft-07 keywords this generator emits, and no others. */
interface JsonSchema {
  $schema?: string;
  title?: string;
  description?: string;
  markdownDescription?: string;
  type?: 'object' | 'string' | 'integer' | 'number' | 'array' | ['number', 'null'];
  enum?: string[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  items?: JsonSchema;
  minItems?: number;
  anyOf?: JsonSchema[];
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean;
}

/** Draft-07 `exclusiveMinimum` is a number of its own, replacing `minimum`. */
function lowerBound(min: number, exclusiveMin: boolean | undefined): JsonSchema {
  return exclusiveMin ? { exclusiveMinimum: min } : { minimum: min };
}

function integer(min: number, max: number): JsonSchema {
  return { type: 'integer', minimum: min, maximum: max };
}

function enumeration(values: readonly string[]): JsonSchema {
  return { type: 'string', enum: [...values] };
}

/** Lists must not be empty: the language server rejects `[]` too. */
function list(items: JsonSchema): JsonSchema {
  return { type: 'array', items, minItems: 1 };
}

/** The language server rejects empty paths, so the schema does as well. */
const PATH: JsonSchema = { type: 'string', minLength: 1 };

function valueSchema(t: ValueType): JsonSchema {
  switch (t.kind) {
    case 'enum':
      return enumeration(t.values);
    case 'string':
      return PATH;
    case 'integer':
      return integer(t.min, t.max);
    case 'number':
      return { type: t.nullable ? ['number', 'null'] : 'number', ...lowerBound(t.min, t.exclusiveMin), maximum: t.max };
    case 'integerList':
      return list(integer(t.min, t.max));
    case 'numberList':
      return list({ type: 'number', ...lowerBound(t.min, t.exclusiveMin), maximum: t.max });
    case 'integerOrList':
      return { anyOf: [integer(t.min, t.max), list(integer(t.min, t.max))] };
    case 'enumOrList':
      return { anyOf: [enumeration(t.values), list(enumeration(t.values))] };
    case 'stringList':
      return list(PATH);
  }
}

/** KeyDef defaults are written as YAML-ish source text; `cuda` is not JSON, `[8, 4, 2, 1]` is. */
function parseDefault(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Editors that ignore markdownDescription show `description` verbatim, so it loses the code spans. */
function plain(markdown: string): string {
  return markdown.replace(/`([^`]*)`/g, '$1');
}

function keySchema(def: KeyDef): JsonSchema {
  const markdown = def.details ? `${def.summary}\n\n${def.details}` : def.summary;
  const text = def.details ? `${def.summary} ${def.details}` : def.summary;
  return {
    description: plain(text),
    markdownDescription: markdown,
    ...valueSchema(def.type),
    ...(def.default !== undefined ? { default: parseDefault(def.default) } : {}),
  };
}

export function configJsonSchema(): object {
  const schema: JsonSchema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'ViT Lens model config',
    description:
      'A SOFT / SOFT-Norm / UFO-ViT model config: the official SOFT training keys plus ViT Lens architecture overrides and study settings.',
    type: 'object',
    properties: Object.fromEntries(CONFIG_KEYS.map((def) => [def.key, keySchema(def)])),
    // Official configs may gain keys in later releases; the language server reports unknown keys itself.
    additionalProperties: true,
  };
  return schema;
}
