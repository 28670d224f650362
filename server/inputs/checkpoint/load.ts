/**
 * Loads the weights of a checkpoint file: a PyTorch zip (`torch.save` of a state_dict, or
 * a timm / DeiT training checkpoint wrapping one) or a .safetensors file. Training
 * checkpoints are unwrapped to the weights one would evaluate: the EMA copy when there is
 * one, else `state_dict`, else `model`; a DataParallel `module.` prefix is stripped.
 * Only the chosen tensors' storages are read, so optimizer state costs nothing.
 */
import fs from 'node:fs';
import { errorMessage } from '../../core/errors';
import { CheckpointError } from './errors';
import { looksLikeSafetensors, readSafetensors } from './safetensors';
import { materialise, viewNumel, decodeStorage, type DecodedStorage, type Tensor } from './tensors';
import { ArgsNamespace, TensorRef, unpickle, type PickleDict, type PickleValue } from './unpickle';
import { openTorchZip } from './zip';

export type { Tensor, DType, TensorData } from './tensors';
export { CheckpointError } from './errors';

/** Where in the file the weights came from ('root': the file is the state_dict itself). */
export type CheckpointSource = 'state_dict_ema' | 'state_dict' | 'model' | 'root';

/** Wrapper keys holding weights, most preferred first (timm's EMA weights evaluate best). */
const WRAPPER_KEYS = ['state_dict_ema', 'state_dict', 'model'] as const;

/** DataParallel / DistributedDataParallel prefix every key when the wrapper is saved. */
const DATA_PARALLEL_PREFIX = 'module.';

/** All tensors of one checkpoint together (4 GiB as float32); views can expand storages. */
const MAX_TOTAL_ELEMENTS = 2 ** 30;

type Scalar = string | number | boolean | null;

export interface CheckpointMeta {
  file: string;
  format: 'pytorch' | 'safetensors';
  /** Keys of a training checkpoint's top-level dict; empty when the file is a state_dict. */
  topLevelKeys: string[];
  epoch?: number;
  arch?: string;
  version?: number;
  metric?: number;
  /** The scalar fields of a training checkpoint's `args` (argparse.Namespace or dict). */
  args?: Record<string, Scalar>;
  /** Set when a `module.` prefix was removed from the keys. */
  strippedPrefix?: string;
  /** Entries of the weights dict that are not tensors, left out of `tensors`. */
  skipped: string[];
  /** A safetensors file's `__metadata__`. */
  metadata?: Record<string, string>;
}

export interface LoadedCheckpoint {
  tensors: Map<string, Tensor>;
  source: CheckpointSource;
  meta: CheckpointMeta;
}

function isDict(v: PickleValue | undefined): v is PickleDict {
  return v instanceof Map;
}

/** `v` when it can be a state_dict: a dict with string keys and at least one tensor. */
function asWeights(v: PickleValue | undefined): Map<string, PickleValue> | undefined {
  const ok =
    isDict(v) &&
    [...v.keys()].every((k) => typeof k === 'string') &&
    [...v.values()].some((t) => t instanceof TensorRef);
  return ok ? (v as Map<string, PickleValue>) : undefined;
}

function pickWeights(root: PickleValue, file: string): { weights: Map<string, PickleValue>; source: CheckpointSource } {
  if (!isDict(root)) throw new CheckpointError(file, 'the checkpoint is not a dict, so it holds no state_dict');
  for (const key of WRAPPER_KEYS) {
    const weights = asWeights(root.get(key));
    if (weights) return { weights, source: key };
  }
  const weights = asWeights(root);
  if (weights) return { weights, source: 'root' };
  const keys = [...root.keys()].filter((k) => typeof k === 'string').slice(0, 12);
  throw new CheckpointError(
    file,
    `no weights found: expected a state_dict or a dict with ${WRAPPER_KEYS.join(' / ')} (top-level keys: ${keys.join(', ') || 'none'})`,
  );
}

/** Scalar attributes of `args`; nested values (lists, dicts) are left out of the summary. */
function scalarFields(args: PickleValue | undefined): Record<string, Scalar> | undefined {
  const fields = args instanceof ArgsNamespace ? args.fields : isDict(args) ? args : undefined;
  if (!fields) return undefined;
  const out: Record<string, Scalar> = {};
  for (const [k, v] of fields) {
    if (
      typeof k === 'string' &&
      (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
    )
      out[k] = v;
  }
  return out;
}

/** The training-checkpoint fields worth showing next to the weights. */
function describeRoot(root: PickleDict, meta: CheckpointMeta): void {
  const get = (key: string) => root.get(key);
  const num = (v: PickleValue | undefined) => (typeof v === 'number' ? v : undefined);
  const epoch = num(get('epoch'));
  const version = num(get('version'));
  const metric = num(get('metric'));
  const arch = get('arch');
  const args = scalarFields(get('args'));
  meta.topLevelKeys = [...root.keys()].filter((k): k is string => typeof k === 'string');
  if (epoch !== undefined) meta.epoch = epoch;
  if (version !== undefined) meta.version = version;
  if (metric !== undefined) meta.metric = metric;
  if (typeof arch === 'string') meta.arch = arch;
  if (args) meta.args = args;
}

/** Removes a DataParallel prefix; two keys that collide once stripped are an error. */
function stripPrefix<T>(entries: [string, T][], meta: CheckpointMeta): Map<string, T> {
  const out = new Map<string, T>();
  for (const [key, value] of entries) {
    const stripped = key.startsWith(DATA_PARALLEL_PREFIX) ? key.slice(DATA_PARALLEL_PREFIX.length) : key;
    if (stripped !== key) meta.strippedPrefix = DATA_PARALLEL_PREFIX;
    if (out.has(stripped))
      throw new CheckpointError(
        meta.file,
        `keys ${key} and ${stripped} collide once the ${DATA_PARALLEL_PREFIX} prefix is removed`,
      );
    out.set(stripped, value);
  }
  return out;
}

function loadTorch(bytes: Uint8Array, file: string): LoadedCheckpoint {
  const zip = openTorchZip(bytes, file);
  const root = unpickle(zip.pickle, file);
  const { weights, source } = pickWeights(root, file);
  const meta: CheckpointMeta = { file, format: 'pytorch', topLevelKeys: [], skipped: [] };
  if (source !== 'root' && isDict(root)) describeRoot(root, meta);
  const refs: [string, TensorRef][] = [];
  for (const [key, value] of weights) {
    if (value instanceof TensorRef) refs.push([key, value]);
    else meta.skipped.push(key);
  }
  let total = 0;
  for (const [key, ref] of refs) total += viewNumel(ref.view, ref.storage.numel, file, key);
  if (total > MAX_TOTAL_ELEMENTS)
    throw new CheckpointError(
      file,
      `the weights have ${total} elements, more than the ${MAX_TOTAL_ELEMENTS} ViT Lens loads`,
    );
  const raw = zip.readStorages(new Set(refs.map(([, ref]) => ref.storage.key)));
  // Decode each storage once: several tensors may view the same one.
  const decoded = new Map<string, DecodedStorage>();
  const storageOf = (ref: TensorRef): DecodedStorage => {
    const { key, dtype, numel } = ref.storage;
    let s = decoded.get(key);
    if (!s)
      decoded.set(key, (s = decodeStorage(raw.get(key)!, dtype, numel, file, `storage ${zip.prefix}/data/${key}`)));
    return s;
  };
  const tensors = stripPrefix(
    refs.map(([key, ref]) => [key, materialise(storageOf(ref), ref.view, file, key)]),
    meta,
  );
  return { tensors, source, meta };
}

function loadSafetensors(bytes: Uint8Array, file: string): LoadedCheckpoint {
  const { tensors, metadata } = readSafetensors(bytes, file);
  const meta: CheckpointMeta = { file, format: 'safetensors', topLevelKeys: [], skipped: [], metadata };
  return { tensors: stripPrefix([...tensors], meta), source: 'root', meta };
}

/**
 * Reads a checkpoint from a path or from bytes. `name` labels the file in errors (and its
 * extension helps detect safetensors); it defaults to the path. Never executes anything
 * from the file; throws CheckpointError for every unreadable, unsupported or hostile input.
 */
export function loadCheckpoint(input: string | Uint8Array, name?: string): LoadedCheckpoint {
  const file = name ?? (typeof input === 'string' ? input : '<buffer>');
  let bytes: Uint8Array;
  try {
    bytes = typeof input === 'string' ? fs.readFileSync(input) : input;
  } catch (e) {
    throw new CheckpointError(file, `cannot read the file (${errorMessage(e)})`);
  }
  const safetensors = file.toLowerCase().endsWith('.safetensors') || looksLikeSafetensors(bytes);
  return safetensors ? loadSafetensors(bytes, file) : loadTorch(bytes, file);
}
