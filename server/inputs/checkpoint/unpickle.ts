/**
 * An allow-list unpickler for `torch.save` pickles, on top of pickleparser.
 *
 * Nothing in a checkpoint is ever executed. Only these globals resolve, each to an inert
 * function written here: `collections.OrderedDict` (an empty Map),
 * `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter` (a validated tensor
 * descriptor; no data is touched), the `torch.*Storage` types (markers inside persistent
 * ids), and `argparse.Namespace` (timm and DeiT pickle their command-line `args`; it
 * becomes plain data). Any other global is refused with a CheckpointError, both by the
 * opcode scan (GLOBAL) and by the parser's resolver (STACK_GLOBAL), before it can be
 * called: pickleparser's own default would turn unknown names into stand-in objects.
 *
 * The parser's raw result is then copied into a checked value tree: exact prototypes
 * only, no cycles, bounded depth and node count (memo sharing is copied once, so a
 * "billion laughs" DAG stays linear).
 */
import { Parser } from 'pickleparser';
import { errorMessage } from '../../core/errors';
import { CheckpointError } from './errors';
import { scanPickle } from './scan';
import { viewNumel, type DType, type TensorView } from './tensors';

/** Nesting of the value tree; real checkpoints stay below 10. */
const MAX_VALUE_DEPTH = 100;
/** Distinct values in one pickle; each costs at least one opcode byte anyway. */
const MAX_VALUE_NODES = 20_000_000;

/** The dtype each pickled storage class carries. */
const STORAGE_DTYPES: ReadonlyMap<string, DType> = new Map<string, DType>([
  ['FloatStorage', 'float32'],
  ['HalfStorage', 'float16'],
  ['BFloat16Storage', 'bfloat16'],
  ['DoubleStorage', 'float64'],
  ['LongStorage', 'int64'],
  ['IntStorage', 'int32'],
  ['ShortStorage', 'int16'],
  ['CharStorage', 'int8'],
  ['ByteStorage', 'uint8'],
  ['BoolStorage', 'bool'],
]);

/** One `<archive>/data/<key>` entry as the pickle describes it (numel in elements). */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
  ) {
    Object.freeze(this);
  }
}

/** A tensor as `_rebuild_tensor_v2` describes it; materialised later from its storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly view: Readonly<TensorView>,
  ) {
    Object.freeze(this);
  }
}

/** An `argparse.Namespace`, reduced to its attribute values. */
export class ArgsNamespace {
  constructor(readonly fields: ReadonlyMap<string, PickleValue>) {
    Object.freeze(this);
  }
}

/** Python dicts (OrderedDict included) keep their insertion order and non-string keys. */
export type PickleDict = Map<PickleValue, PickleValue>;

/** What a checked pickle can contain. Tuples, lists and sets all become arrays. */
export type PickleValue =
  null | boolean | number | string | Uint8Array | PickleValue[] | PickleDict | TensorRef | ArgsNamespace;

/** Target of NEWOBJ + BUILD for `argparse.Namespace`; BUILD hands its `__dict__` here. */
class NamespaceState {
  state: unknown;
  __setstate__(state: unknown): void {
    this.state = state;
  }
}

function refusal(file: string, module: unknown, name: unknown): CheckpointError {
  // STACK_GLOBAL operands are arbitrary stack values: show them short.
  const show = (v: unknown) => (typeof v === 'string' ? v.slice(0, 120) : `<${typeof v}>`);
  return new CheckpointError(
    file,
    `refused to load ${show(module)}.${show(name)}: not in the allow-list; ViT Lens never executes code from a checkpoint ` +
      '(it reads state_dicts and timm/DeiT training checkpoints only)',
  );
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isIndexList = (v: unknown): v is number[] => Array.isArray(v) && v.every(isIndex);

/**
 * The resolvable globals of one parse. Everything is created per parse and frozen, so a
 * pickle that BUILDs onto a resolved function cannot affect another file.
 */
class AllowList {
  private readonly storageTypes = new Map<unknown, DType>();
  private readonly storages = new Map<string, StorageRef>();
  readonly tensors = new WeakSet<TensorRef>();
  readonly namespaces = new WeakSet<NamespaceState>();
  private readonly globals = new Map<string, (new () => NamespaceState) | ((...args: unknown[]) => unknown)>();

  constructor(private readonly file: string) {
    const fail = (problem: string) => new CheckpointError(file, problem);
    const tensors = this.tensors;
    const namespaces = this.namespaces;
    const register = (
      module: string,
      name: string,
      fn: (new () => NamespaceState) | ((...args: unknown[]) => unknown),
    ) => {
      this.globals.set(`${module}\n${name}`, Object.freeze(fn));
    };

    register('collections', 'OrderedDict', (...args) => {
      // Python reduces an OrderedDict to OrderedDict() and fills it with SETITEMS.
      if (args.length) throw fail('collections.OrderedDict called with arguments');
      return new Map();
    });
    register('torch._utils', '_rebuild_tensor_v2', (...args) => {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      const [storage, offset, shape, stride, requiresGrad] = args;
      if (
        args.length < 6 ||
        args.length > 7 ||
        !(storage instanceof StorageRef) ||
        this.storages.get(storage.key) !== storage ||
        !isIndex(offset) ||
        !isIndexList(shape) ||
        !isIndexList(stride) ||
        typeof requiresGrad !== 'boolean'
      ) {
        throw fail('malformed torch._utils._rebuild_tensor_v2 arguments');
      }
      const view = Object.freeze({ offset, shape: Object.freeze([...shape]), stride: Object.freeze([...stride]) });
      viewNumel(view, storage.numel, file, `a tensor in storage ${storage.key}`);
      const tensor = new TensorRef(storage, view);
      tensors.add(tensor);
      return tensor;
    });
    register('torch._utils', '_rebuild_parameter', (...args) => {
      // (data, requires_grad, backward_hooks): an nn.Parameter is its tensor here.
      const [data, requiresGrad] = args;
      if (
        args.length !== 3 ||
        !(data instanceof TensorRef) ||
        !tensors.has(data) ||
        typeof requiresGrad !== 'boolean'
      ) {
        throw fail('malformed torch._utils._rebuild_parameter arguments');
      }
      return data;
    });
    for (const [name, dtype] of STORAGE_DTYPES) {
      // Storage classes only appear as markers inside persistent ids, never called.
      const marker = () => {
        throw fail(`torch.${name} called directly`);
      };
      this.storageTypes.set(marker, dtype);
      register('torch', name, marker);
    }
    register(
      'argparse',
      'Namespace',
      class extends NamespaceState {
        constructor() {
          super();
          namespaces.add(this);
        }
      },
    );
  }

  /** The function a GLOBAL resolves to, or a refusal. */
  resolve(module: unknown, name: unknown): (new () => NamespaceState) | ((...args: unknown[]) => unknown) {
    const fn =
      typeof module === 'string' && typeof name === 'string' ? this.globals.get(`${module}\n${name}`) : undefined;
    if (!fn) throw refusal(this.file, module, name);
    return fn;
  }

  /** BINPERSID: `('storage', <storage type>, key, location, numel)`; one StorageRef per key. */
  storage(pid: unknown): StorageRef {
    const [tag, type, key, location, numel] = Array.isArray(pid) ? pid : [];
    const dtype = this.storageTypes.get(type);
    if (
      !Array.isArray(pid) ||
      pid.length !== 5 ||
      tag !== 'storage' ||
      !dtype ||
      typeof key !== 'string' ||
      !/^\w{1,64}$/.test(key) ||
      typeof location !== 'string' ||
      !isIndex(numel)
    ) {
      throw new CheckpointError(this.file, 'malformed persistent id (expected a torch storage reference)');
    }
    const known = this.storages.get(key);
    if (known && (known.dtype !== dtype || known.numel !== numel)) {
      throw new CheckpointError(this.file, `storage ${key} is described twice with different types or sizes`);
    }
    const storage = known ?? new StorageRef(key, dtype, numel);
    this.storages.set(key, storage);
    return storage;
  }
}

/** Copies the parser's raw result into a PickleValue, refusing anything unexpected. */
class Sanitiser {
  private readonly done = new Map<object, PickleValue>();
  private readonly open = new Set<object>();
  private nodes = 0;

  constructor(
    private readonly file: string,
    private readonly allow: AllowList,
  ) {}

  private fail(problem: string): CheckpointError {
    return new CheckpointError(this.file, `unsupported pickle content: ${problem}`);
  }

  private count(n: number): void {
    this.nodes += n;
    if (this.nodes > MAX_VALUE_NODES) throw this.fail(`more than ${MAX_VALUE_NODES} values`);
  }

  value(raw: unknown, depth: number): PickleValue {
    if (raw === null || typeof raw === 'boolean' || typeof raw === 'number' || typeof raw === 'string') return raw;
    if (typeof raw !== 'object')
      throw this.fail(`an unexpected ${typeof raw} (a global used as a value, or a missing memo entry)`);
    const seen = this.done.get(raw);
    if (seen !== undefined) return seen;
    if (this.open.has(raw)) throw this.fail('a self-referencing structure');
    if (depth > MAX_VALUE_DEPTH) throw this.fail(`nesting deeper than ${MAX_VALUE_DEPTH} levels`);
    this.open.add(raw);
    this.count(1);
    const out = this.copy(raw, depth + 1);
    this.open.delete(raw);
    this.done.set(raw, out);
    return out;
  }

  private copy(raw: object, depth: number): PickleValue {
    const proto = Object.getPrototypeOf(raw);
    if (proto === Array.prototype) {
      const items = raw as unknown[];
      // BUILD can set an array's length; check it before walking a sparse giant.
      this.count(items.length);
      const out: PickleValue[] = [];
      for (let i = 0; i < items.length; i++) out.push(this.value(items[i], depth));
      return out;
    }
    if (proto === Map.prototype) {
      const map = raw as Map<unknown, unknown>;
      this.count(map.size);
      const out: PickleDict = new Map();
      for (const [k, v] of map) out.set(this.value(k, depth), this.value(v, depth));
      return out;
    }
    if (proto === TensorRef.prototype && this.allow.tensors.has(raw as TensorRef)) return raw as TensorRef;
    if (raw instanceof NamespaceState && this.allow.namespaces.has(raw)) {
      // Python skips BUILD for a Namespace without attributes.
      const state = raw.state ?? new Map();
      if (Object.getPrototypeOf(state) !== Map.prototype)
        throw this.fail('an argparse.Namespace whose state is not a dict');
      const fields = new Map<string, PickleValue>();
      for (const [k, v] of state as Map<unknown, unknown>) {
        if (typeof k !== 'string') throw this.fail('an argparse.Namespace with a non-string attribute name');
        fields.set(k, this.value(v, depth));
      }
      return new ArgsNamespace(fields);
    }
    // Copied so the value does not pin the whole pickle buffer.
    if (raw instanceof Uint8Array) return new Uint8Array(raw);
    if (proto === StorageRef.prototype) throw this.fail('a bare storage outside a tensor');
    throw this.fail('an object of an unexpected type');
  }
}

/**
 * Parses a `data.pkl` into checked values. `file` names the checkpoint in errors.
 * Throws CheckpointError for refused globals, malformed pickles and limits.
 */
export function unpickle(bytes: Uint8Array, file: string): PickleValue {
  const allow = new AllowList(file);
  scanPickle(bytes, file, (module, name) => void allow.resolve(module, name));
  let raw: unknown;
  try {
    raw = new Parser({
      nameResolver: { resolve: (module, name) => allow.resolve(module, name) },
      persistentResolver: { resolve: (pid: unknown) => allow.storage(pid) },
      // Maps keep non-string keys (optimizer state uses ints) and cannot be prototype-polluted.
      unpicklingTypeOfDictionary: 'Map',
      unpicklingTypeOfSet: 'array',
    }).parse(bytes);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(file, `malformed pickle (${errorMessage(e)})`);
  }
  return new Sanitiser(file, allow).value(raw, 0);
}
