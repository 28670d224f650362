/**
 * The checkpoint reader: the real tiny SOFT state_dict (fixtures/ref/tiny_soft.pth, saved
 * by PyTorch 1.13), synthetic torch zips and safetensors files built here from hand-written
 * pickle opcodes, and hostile inputs that must be refused quickly without running anything.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { zipSync } from 'fflate';
import { checkAgainst, formatCheckReport, isCleanCheck } from '../server/inputs/checkpoint/check';
import { CheckpointError, loadCheckpoint, type LoadedCheckpoint, type Tensor } from '../server/inputs/checkpoint/load';
import { FIXTURES, readJson } from './helpers/fixtures';

// ---------------------------------------------------------------------------------------
// Pickle protocol 2 writer (the opcodes torch.save emits), for synthetic checkpoints.

class Pickle {
  private readonly out: number[] = [];

  raw(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }
  text(s: string): this {
    return this.raw(...Buffer.from(s, 'utf8'));
  }
  u32(n: number): this {
    return this.raw(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  proto(v = 2): this {
    return this.raw(0x80, v);
  }
  global(module: string, name: string): this {
    return this.text(`c${module}\n${name}\n`);
  }
  mark(): this {
    return this.text('(');
  }
  tuple(): this {
    return this.text('t');
  }
  emptyTuple(): this {
    return this.text(')');
  }
  emptyList(): this {
    return this.text(']');
  }
  append(): this {
    return this.text('a');
  }
  emptyDict(): this {
    return this.text('}');
  }
  setitems(): this {
    return this.text('u');
  }
  reduce(): this {
    return this.text('R');
  }
  build(): this {
    return this.text('b');
  }
  newobj(): this {
    return this.raw(0x81);
  }
  binpersid(): this {
    return this.text('Q');
  }
  binput(i: number): this {
    return this.raw(0x71, i);
  }
  binget(i: number): this {
    return this.raw(0x68, i);
  }
  none(): this {
    return this.text('N');
  }
  bool(b: boolean): this {
    return this.raw(b ? 0x88 : 0x89);
  }
  stop(): this {
    return this.text('.');
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.text('X')
      .u32(b.length)
      .raw(...b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw(0x4b, n);
    if (n >= 0 && n < 65536) return this.raw(0x4d, n & 0xff, n >> 8);
    if (n >= -(2 ** 31) && n < 2 ** 31) return this.raw(0x4a).u32(n);
    // LONG1, non-negative, little-endian, with a clear top bit (a sign byte when needed).
    const digits: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) digits.push(v % 256);
    if (digits[digits.length - 1]! >= 0x80) digits.push(0);
    return this.raw(0x8a, digits.length, ...digits);
  }
  float(x: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(x);
    return this.raw(0x47, ...b);
  }
  ints(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

type StorageClass = 'FloatStorage' | 'HalfStorage' | 'BFloat16Storage' | 'DoubleStorage' | 'LongStorage';

interface TensorSpec {
  key: string;
  cls?: StorageClass;
  numel: number;
  offset?: number;
  shape: number[];
  stride?: number[];
}

function contiguousStride(shape: readonly number[]): number[] {
  return shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
}

/** `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`. */
function tensor(p: Pickle, t: TensorSpec): Pickle {
  p.global('torch._utils', '_rebuild_tensor_v2').mark();
  p.mark()
    .str('storage')
    .global('torch', t.cls ?? 'FloatStorage')
    .str(t.key)
    .str('cpu')
    .int(t.numel)
    .tuple()
    .binpersid();
  p.int(t.offset ?? 0)
    .ints(t.shape)
    .ints(t.stride ?? contiguousStride(t.shape))
    .bool(false);
  return p.global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
}

/** An OrderedDict state_dict, with the `_metadata` BUILD torch.save writes. */
function stateDict(p: Pickle, entries: [string, TensorSpec][]): Pickle {
  p.global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  for (const [name, t] of entries) tensor(p.str(name), t);
  p.setitems();
  p.emptyDict().mark().str('_metadata').global('collections', 'OrderedDict').emptyTuple().reduce();
  p.mark().str('').emptyDict().mark().str('version').int(1).setitems().setitems().setitems();
  return p.build();
}

function torchZip(pickle: Uint8Array, storages: Record<string, Uint8Array> = {}, prefix = 'archive'): Uint8Array {
  const files: Record<string, Uint8Array> = {
    [`${prefix}/data.pkl`]: pickle,
    [`${prefix}/version`]: Buffer.from('3\n'),
  };
  for (const [key, data] of Object.entries(storages)) files[`${prefix}/data/${key}`] = data;
  return zipSync(files, { level: 0 });
}

const f32 = (...v: number[]) => new Uint8Array(Float32Array.from(v).buffer);
const f64 = (...v: number[]) => new Uint8Array(Float64Array.from(v).buffer);
const u16 = (...v: number[]) => new Uint8Array(Uint16Array.from(v).buffer);
const i64 = (...v: bigint[]) => new Uint8Array(BigInt64Array.from(v).buffer);

function floats(t: Tensor | undefined): number[] {
  assert.ok(t && t.data instanceof Float32Array, 'expected a float tensor');
  return Array.from(t.data);
}

/** Asserts a CheckpointError naming `file` whose message matches `problem`, within 2 s. */
function refuses(run: () => unknown, file: string, problem: RegExp): CheckpointError {
  const t0 = performance.now();
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  const ms = performance.now() - t0;
  assert.ok(caught instanceof CheckpointError, `expected a CheckpointError, got ${String(caught)}`);
  assert.ok(caught.message.includes(file), `message names the file: ${caught.message}`);
  assert.match(caught.message, problem);
  assert.ok(ms < 2000, `refused in ${ms.toFixed(0)} ms`);
  return caught;
}

// ---------------------------------------------------------------------------------------

describe('tiny_soft.pth (a real torch.save of a state_dict)', () => {
  const cfg = readJson<{
    state_dict: { key: string; shape: number[]; dtype: string }[];
    randomised_norm_modules: string[];
  }>('ref/tiny_soft_config.json');
  const pth = path.join(FIXTURES, 'ref', 'tiny_soft.pth');
  const ck: LoadedCheckpoint = loadCheckpoint(pth);

  test('has exactly the 137 keys, in order, with their shapes and dtypes', () => {
    assert.equal(cfg.state_dict.length, 137);
    assert.deepEqual(
      [...ck.tensors.keys()],
      cfg.state_dict.map((e) => e.key),
    );
    for (const e of cfg.state_dict) {
      const t = ck.tensors.get(e.key)!;
      assert.deepEqual(t.shape, e.shape, e.key);
      assert.equal(t.dtype, e.dtype, e.key);
      assert.equal(
        t.data.length,
        e.shape.reduce((a, b) => a * b, 1),
        e.key,
      );
    }
    assert.equal(ck.source, 'root');
    assert.equal(ck.meta.format, 'pytorch');
    assert.deepEqual(ck.meta.skipped, []);
  });

  test('num_batches_tracked is an int64 scalar', () => {
    const t = ck.tensors.get('patch_embed1.proj.1.num_batches_tracked')!;
    assert.deepEqual(t.shape, []);
    assert.equal(t.dtype, 'int64');
    assert.ok(t.data instanceof BigInt64Array && t.data.length === 1);
  });

  test('checkAgainst finds nothing missing, unexpected or mismatched', () => {
    const r = checkAgainst(ck.tensors, cfg.state_dict);
    assert.deepEqual(r, { missing: [], unexpected: [], mismatched: [] });
    assert.equal(
      formatCheckReport(r, cfg.state_dict.length),
      'All 137 expected tensors are present with the expected shapes.',
    );
  });

  test('randomised norm statistics have the ranges they were drawn from', () => {
    for (const m of cfg.randomised_norm_modules) {
      const runningVar = ck.tensors.get(`${m}.running_var`);
      if (runningVar) {
        // BatchNorm running_var = 1 + 0.25·U[0,1)
        for (const v of floats(runningVar)) assert.ok(v >= 1 && v < 1.25, `${m}.running_var ${v}`);
      } else {
        // LayerNorm weight = 1 + 0.1·N(0,1): near 1, and not left at the default
        const w = floats(ck.tensors.get(`${m}.weight`));
        for (const v of w) assert.ok(Math.abs(v - 1) < 0.6, `${m}.weight ${v}`);
        assert.ok(
          w.some((v) => v !== 1),
          `${m}.weight was randomised`,
        );
      }
    }
  });

  test('values equal the raw storage bytes read independently', () => {
    const file = fs.readFileSync(pth);
    const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
    /** Start of a stored entry's data, from its local file header (PK\3\4, name at +30). */
    const entryData = (name: string): number => {
      for (let at = file.indexOf('PK\x03\x04'); at >= 0; at = file.indexOf('PK\x03\x04', at + 1)) {
        const nameLen = view.getUint16(at + 26, true);
        if (file.toString('latin1', at + 30, at + 30 + nameLen) === name)
          return at + 30 + nameLen + view.getUint16(at + 28, true);
      }
      throw new Error(`no entry ${name}`);
    };
    // Storage keys from pickletools.dis of tiny_soft/data.pkl; all these are contiguous at offset 0.
    const spots: [string, string, number][] = [
      ['pos_embed1', '0', 12345],
      ['head.weight', '135', 3 * 64 + 17],
      ['norm.weight', '133', 5],
      ['patch_embed1.proj.1.running_var', '10', 7],
    ];
    for (const [key, storage, index] of spots) {
      const expected = view.getFloat32(entryData(`tiny_soft/data/${storage}`) + 4 * index, true);
      assert.equal(floats(ck.tensors.get(key))[index], expected, key);
    }
  });

  test('loads from bytes with a display name', () => {
    const again = loadCheckpoint(fs.readFileSync(pth), 'copy.pth');
    assert.equal(again.meta.file, 'copy.pth');
    assert.deepEqual(floats(again.tensors.get('head.bias')), floats(ck.tensors.get('head.bias')));
  });
});

describe('synthetic torch checkpoints', () => {
  test('views: transposed, shared storage with an offset, stride-0 expansion, parameters', () => {
    const p = new Pickle().proto();
    stateDict(p, [
      ['t', { key: '0', numel: 6, shape: [3, 2], stride: [1, 3] }],
      ['a', { key: '1', numel: 6, shape: [6] }],
      ['b', { key: '1', numel: 6, offset: 2, shape: [2, 2], stride: [2, 1] }],
      ['e', { key: '2', numel: 1, shape: [2, 3], stride: [0, 0] }],
    ]).stop();
    const ck = loadCheckpoint(
      torchZip(p.bytes(), { 0: f32(0, 1, 2, 3, 4, 5), 1: f32(10, 11, 12, 13, 14, 15), 2: f32(7) }),
      'views.pth',
    );
    assert.deepEqual(ck.tensors.get('t')?.shape, [3, 2]);
    assert.deepEqual(floats(ck.tensors.get('t')), [0, 3, 1, 4, 2, 5]);
    assert.deepEqual(floats(ck.tensors.get('a')), [10, 11, 12, 13, 14, 15]);
    assert.deepEqual(floats(ck.tensors.get('b')), [12, 13, 14, 15]);
    assert.deepEqual(floats(ck.tensors.get('e')), [7, 7, 7, 7, 7, 7]);

    // nn.Parameter: _rebuild_parameter(tensor, requires_grad, OrderedDict())
    const q = new Pickle().proto().global('collections', 'OrderedDict').emptyTuple().reduce().mark().str('p');
    q.global('torch._utils', '_rebuild_parameter').mark();
    tensor(q, { key: '0', numel: 2, shape: [2] })
      .bool(true)
      .global('collections', 'OrderedDict')
      .emptyTuple()
      .reduce()
      .tuple()
      .reduce();
    q.setitems().stop();
    assert.deepEqual(
      floats(loadCheckpoint(torchZip(q.bytes(), { 0: f32(1, 2) }), 'param.pth').tensors.get('p')),
      [1, 2],
    );
  });

  test('dtypes: float16, bfloat16, float64, int64', () => {
    const p = new Pickle().proto();
    stateDict(p, [
      ['h', { key: '0', cls: 'HalfStorage', numel: 6, shape: [6] }],
      ['g', { key: '1', cls: 'BFloat16Storage', numel: 4, shape: [2, 2] }],
      ['d', { key: '2', cls: 'DoubleStorage', numel: 2, shape: [2] }],
      ['n', { key: '3', cls: 'LongStorage', numel: 1, shape: [] }],
    ]).stop();
    const ck = loadCheckpoint(
      torchZip(p.bytes(), {
        0: u16(0x3e00, 0xc080, 0x7bff, 0x0001, 0x8000, 0x7c00),
        1: u16(0x3fc0, 0xc010, 0x477f, 0xff80),
        2: f64(0.1, -3),
        3: i64(7n),
      }),
      'dtypes.pth',
    );
    assert.deepEqual(floats(ck.tensors.get('h')), [1.5, -2.25, 65504, 2 ** -24, -0, Infinity]);
    assert.equal(ck.tensors.get('h')?.dtype, 'float16');
    assert.deepEqual(floats(ck.tensors.get('g')), [1.5, -2.25, 65280, -Infinity]);
    assert.equal(ck.tensors.get('g')?.dtype, 'bfloat16');
    assert.deepEqual(floats(ck.tensors.get('d')), [Math.fround(0.1), -3]);
    const n = ck.tensors.get('n')!;
    assert.equal(n.dtype, 'int64');
    assert.deepEqual([...n.data], [7n]);
  });

  /** A timm CheckpointSaver dict; `ema` false leaves state_dict_ema out. */
  function timmCheckpoint(ema: boolean): Uint8Array {
    const p = new Pickle().proto().emptyDict().mark();
    p.str('epoch').int(7).str('arch').str('soft_tiny');
    stateDict(p.str('state_dict'), [['module.w', { key: '0', numel: 2, shape: [2] }]]);
    if (ema) stateDict(p.str('state_dict_ema'), [['module.w', { key: '1', numel: 2, shape: [2] }]]);
    // optimizer state: a tensor whose storage entry is absent, to show it is never read
    p.str('optimizer').emptyDict().mark().str('state').emptyDict().mark().int(0).emptyDict().mark();
    tensor(p.str('step').int(3).str('exp_avg'), { key: '9', numel: 2, shape: [2] })
      .setitems()
      .setitems();
    p.str('param_groups')
      .emptyList()
      .emptyDict()
      .mark()
      .str('lr')
      .float(0.001)
      .str('betas')
      .mark()
      .float(0.9)
      .float(0.999)
      .tuple();
    p.str('params').emptyList().int(0).append().setitems().append().setitems();
    // args: argparse.Namespace via NEWOBJ + BUILD, as protocol 2 writes it
    p.str('args').global('argparse', 'Namespace').emptyTuple().newobj().emptyDict().mark();
    p.str('model')
      .str('soft_tiny')
      .str('lr')
      .float(0.001)
      .str('epochs')
      .int(300)
      .str('amp')
      .bool(true)
      .str('mean')
      .none();
    p.str('input_size').ints([3, 224, 224]).setitems().build();
    p.str('version').int(2).str('metric').float(81.5).setitems().stop();
    return torchZip(p.bytes(), { 0: f32(1, 2), 1: f32(10, 20) });
  }

  test('timm checkpoint: EMA weights preferred, module. stripped, metadata kept, optimizer never read', () => {
    const ck = loadCheckpoint(timmCheckpoint(true), 'timm.pth.tar');
    assert.equal(ck.source, 'state_dict_ema');
    assert.deepEqual([...ck.tensors.keys()], ['w']);
    assert.deepEqual(floats(ck.tensors.get('w')), [10, 20]);
    assert.equal(ck.meta.strippedPrefix, 'module.');
    assert.equal(ck.meta.epoch, 7);
    assert.equal(ck.meta.arch, 'soft_tiny');
    assert.equal(ck.meta.version, 2);
    assert.equal(ck.meta.metric, 81.5);
    assert.deepEqual(ck.meta.args, { model: 'soft_tiny', lr: 0.001, epochs: 300, amp: true, mean: null });
    assert.deepEqual(ck.meta.topLevelKeys, [
      'epoch',
      'arch',
      'state_dict',
      'state_dict_ema',
      'optimizer',
      'args',
      'version',
      'metric',
    ]);

    const plain = loadCheckpoint(timmCheckpoint(false), 'timm-no-ema.pth.tar');
    assert.equal(plain.source, 'state_dict');
    assert.deepEqual(floats(plain.tensors.get('w')), [1, 2]);
  });

  test("DeiT-style {'model': state_dict, 'epoch'}", () => {
    const p = new Pickle().proto().emptyDict().mark();
    stateDict(p.str('model'), [['w', { key: '0', numel: 1, shape: [1] }]]);
    p.str('epoch').int(299).setitems().stop();
    const ck = loadCheckpoint(torchZip(p.bytes(), { 0: f32(4) }), 'deit.pth');
    assert.equal(ck.source, 'model');
    assert.equal(ck.meta.epoch, 299);
    assert.deepEqual(floats(ck.tensors.get('w')), [4]);
  });

  test('a dict without weights is explained', () => {
    const p = new Pickle().proto().emptyDict().mark().str('epoch').int(1).setitems().stop();
    refuses(
      () => loadCheckpoint(torchZip(p.bytes()), 'empty.pth'),
      'empty.pth',
      /no weights found.*top-level keys: epoch/,
    );
  });
});

describe('safetensors', () => {
  function safetensors(header: Record<string, unknown>, data: Uint8Array): Uint8Array {
    const json = Buffer.from(JSON.stringify(header));
    const out = new Uint8Array(8 + json.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(data, 8 + json.length);
    return out;
  }
  const data = Buffer.concat([f32(1, 2, 3, 4), u16(0x3e00, 0xc080, 0x7bff), u16(0x3fc0, 0xc010), i64(-5n)]);
  const header = {
    __metadata__: { format: 'pt' },
    'module.w': { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
    'module.h': { dtype: 'F16', shape: [3], data_offsets: [16, 22] },
    'module.g': { dtype: 'BF16', shape: [2], data_offsets: [22, 26] },
    'module.n': { dtype: 'I64', shape: [], data_offsets: [26, 34] },
  };

  test('reads F32/F16/BF16/I64 by extension and by content', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-st-'));
    try {
      const file = path.join(dir, 'weights.safetensors');
      fs.writeFileSync(file, safetensors(header, data));
      for (const ck of [loadCheckpoint(file), loadCheckpoint(fs.readFileSync(file))]) {
        assert.equal(ck.meta.format, 'safetensors');
        assert.equal(ck.source, 'root');
        assert.equal(ck.meta.strippedPrefix, 'module.');
        assert.deepEqual(ck.meta.metadata, { format: 'pt' });
        assert.deepEqual([...ck.tensors.keys()], ['w', 'h', 'g', 'n']);
        assert.deepEqual(ck.tensors.get('w')?.shape, [2, 2]);
        assert.deepEqual(floats(ck.tensors.get('w')), [1, 2, 3, 4]);
        assert.deepEqual(floats(ck.tensors.get('h')), [1.5, -2.25, 65504]);
        assert.deepEqual(floats(ck.tensors.get('g')), [1.5, -2.25]);
        assert.deepEqual([...ck.tensors.get('n')!.data], [-5n]);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('refuses offsets outside the data and inconsistent sizes', () => {
    const outside = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 64] } };
    refuses(
      () => loadCheckpoint(safetensors(outside, data), 'a.safetensors'),
      'a.safetensors',
      /data_offsets .* outside/,
    );
    const short = { w: { dtype: 'F32', shape: [3, 3], data_offsets: [0, 16] } };
    refuses(
      () => loadCheckpoint(safetensors(short, data), 'b.safetensors'),
      'b.safetensors',
      /16 bytes do not hold 9 float32/,
    );
    refuses(() => loadCheckpoint(new Uint8Array(16).fill(0xff), 'c.safetensors'), 'c.safetensors', /header length/);
  });
});

describe('hostile and broken inputs', () => {
  const sentinel = path.join(os.tmpdir(), `vitlens-pwned-${randomUUID()}`);
  const payload = `touch ${sentinel}`;

  /** `module.name(arg)` as GLOBAL + REDUCE, optionally hidden inside a state_dict. */
  function call(module: string, name: string, arg: (p: Pickle) => Pickle): Uint8Array {
    const p = new Pickle().proto().global(module, name).mark();
    return arg(p).tuple().reduce().stop().bytes();
  }

  const calls: [string, string, (p: Pickle) => Pickle][] = [
    ['posix', 'system', (p) => p.str(payload)],
    ['os', 'system', (p) => p.str(payload)],
    ['builtins', 'eval', (p) => p.str(`__import__('os').system(${JSON.stringify(payload)})`)],
    ['subprocess', 'Popen', (p) => p.emptyList().mark().str('touch').str(sentinel).text('e')],
  ];

  for (const [module, name, arg] of calls) {
    test(`GLOBAL ${module} ${name} + REDUCE is refused and nothing runs`, () => {
      const e = refuses(
        () => loadCheckpoint(torchZip(call(module, name, arg)), 'evil.pth'),
        'evil.pth',
        new RegExp(
          `refused to load ${module}\\.${name}: not in the allow-list; ViT Lens never executes code from a checkpoint`,
        ),
      );
      assert.equal(e.file, 'evil.pth');
      assert.equal(fs.existsSync(sentinel), false);
    });
  }

  test('a refused global hidden inside a valid state_dict, and via STACK_GLOBAL, INST or a whole model', () => {
    const hidden = new Pickle().proto().global('collections', 'OrderedDict').emptyTuple().reduce().mark().str('w');
    hidden.global('os', 'system').mark().str(payload).tuple().reduce().setitems().stop();
    refuses(() => loadCheckpoint(torchZip(hidden.bytes()), 'hidden.pth'), 'hidden.pth', /refused to load os\.system/);

    // protocol 4: the name is computed on the stack, so the parser's resolver must refuse it
    const stacked = new Pickle().proto(4).str('os').str('system').raw(0x93).mark().str(payload).tuple().reduce().stop();
    refuses(() => loadCheckpoint(torchZip(stacked.bytes()), 'stack.pth'), 'stack.pth', /refused to load os\.system/);

    const inst = new Pickle().proto().mark().str(payload).text('ios\nsystem\n').stop();
    refuses(
      () => loadCheckpoint(torchZip(inst.bytes()), 'inst.pth'),
      'inst.pth',
      /refused pickle opcode at byte \d+: INST .*never executes code/,
    );

    const model = new Pickle()
      .proto()
      .global('timm.models.vision_transformer', 'VisionTransformer')
      .emptyTuple()
      .newobj()
      .stop();
    refuses(
      () => loadCheckpoint(torchZip(model.bytes()), 'model.pth'),
      'model.pth',
      /refused to load timm\.models\.vision_transformer\.VisionTransformer/,
    );
    assert.equal(fs.existsSync(sentinel), false);
  });

  test('storage numel far beyond the entry bytes', () => {
    const p = new Pickle().proto();
    stateDict(p, [['w', { key: '0', numel: 1_000_000_000, shape: [4] }]]).stop();
    refuses(
      () => loadCheckpoint(torchZip(p.bytes(), { 0: f32(1, 2, 3, 4) }), 'big.pth'),
      'big.pth',
      /claims 1000000000 float32 elements .* holds only 16 bytes/,
    );
  });

  test('out-of-bounds stride, offset and element count', () => {
    const cases: [string, TensorSpec, RegExp][] = [
      [
        'stride.pth',
        { key: '0', numel: 16, shape: [4, 4], stride: [4, 100] },
        /reaches element 312 of a storage with 16/,
      ],
      ['offset.pth', { key: '0', numel: 16, offset: 14, shape: [4] }, /reaches element 17 of a storage with 16/],
      [
        'huge.pth',
        { key: '0', numel: 16, shape: [2 ** 20, 2 ** 20, 2 ** 20], stride: [0, 0, 0] },
        /more than 268435456 elements/,
      ],
    ];
    for (const [file, spec, problem] of cases) {
      const p = new Pickle().proto();
      stateDict(p, [['w', spec]]).stop();
      refuses(() => loadCheckpoint(torchZip(p.bytes(), { 0: new Uint8Array(64) }), file), file, problem);
    }
  });

  test('deep nesting: 100k MARKs, 100k nested lists, a self-referencing list, a memo DAG', () => {
    const marks = new Uint8Array([
      0x80,
      2,
      ...new Uint8Array(100_000).fill(0x28),
      ...new Uint8Array(100_000).fill(0x6c),
      0x2e,
    ]);
    refuses(() => loadCheckpoint(torchZip(marks), 'marks.pth'), 'marks.pth', /nesting deeper than 100 levels/);

    const lists = new Uint8Array([
      0x80,
      2,
      ...new Uint8Array(100_000).fill(0x5d),
      ...new Uint8Array(99_999).fill(0x61),
      0x2e,
    ]);
    refuses(() => loadCheckpoint(torchZip(lists), 'lists.pth'), 'lists.pth', /nesting deeper than 100 levels/);

    const cycle = new Pickle().proto().emptyList().binput(0).binget(0).append().stop();
    refuses(() => loadCheckpoint(torchZip(cycle.bytes()), 'cycle.pth'), 'cycle.pth', /self-referencing/);

    // 2^60 paths through 60 shared lists: must be copied once each, not walked
    const dag = new Pickle().proto().emptyList().binput(0);
    for (let i = 1; i <= 60; i++)
      dag
        .mark()
        .binget(i - 1)
        .binget(i - 1)
        .text('l')
        .binput(i);
    refuses(() => loadCheckpoint(torchZip(dag.stop().bytes()), 'dag.pth'), 'dag.pth', /not a dict/);
  });

  test('truncated zip, random bytes, empty file, legacy and bare pickles', () => {
    const real = fs.readFileSync(path.join(FIXTURES, 'ref', 'tiny_soft.pth'));
    refuses(
      () => loadCheckpoint(real.subarray(0, Math.floor(real.length * 0.6)), 'cut.pth'),
      'cut.pth',
      /truncated or corrupt zip/,
    );

    let seed = 12345;
    const noise = Uint8Array.from(
      { length: 4096 },
      () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 16) & 0xff,
    );
    noise[0] = 0x42;
    refuses(() => loadCheckpoint(noise, 'noise.pth'), 'noise.pth', /not a zip archive/);

    refuses(() => loadCheckpoint(new Uint8Array(0), 'empty.pth'), 'empty.pth', /the file is empty/);

    // torch.save before 1.6: a pickled magic number 0x1950a86a20f9469cfc6c, then more pickles
    const legacy = new Uint8Array([
      0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02, 0x4d, 0xe9,
      0x03, 0x2e,
    ]);
    refuses(
      () => loadCheckpoint(legacy, 'old.pth'),
      'old.pth',
      /legacy \(pre-1\.6\) PyTorch serialization format.*torch>=1\.6/,
    );
    refuses(
      () => loadCheckpoint(new Pickle().proto().emptyDict().stop().bytes(), 'bare.pkl'),
      'bare.pkl',
      /bare Python pickle.*torch>=1\.6/,
    );

    refuses(
      () => loadCheckpoint(path.join(os.tmpdir(), `vitlens-missing-${randomUUID()}.pth`)),
      'vitlens-missing-',
      /cannot read the file/,
    );
  });

  test('zip without data.pkl, and a storage entry the pickle needs but the zip lacks', () => {
    refuses(
      () => loadCheckpoint(zipSync({ 'x/other.txt': Buffer.from('hi') }), 'other.zip'),
      'other.zip',
      /no <archive>\/data\.pkl/,
    );
    const p = new Pickle().proto();
    stateDict(p, [['w', { key: '0', numel: 1, shape: [1] }]]).stop();
    refuses(() => loadCheckpoint(torchZip(p.bytes()), 'nodata.pth'), 'nodata.pth', /no entry "archive\/data\/0"/);
  });
});

describe('checkAgainst', () => {
  test('reports missing, unexpected and mismatched keys', () => {
    const tensors = new Map([
      ['a', { shape: [2, 3] }],
      ['b', { shape: [4] }],
      ['extra', { shape: [1] }],
    ]);
    const r = checkAgainst(tensors, [
      { key: 'a', shape: [2, 3] },
      { key: 'b', shape: [5] },
      { key: 'c', shape: [1] },
    ]);
    assert.deepEqual(r, {
      missing: ['c'],
      unexpected: ['extra'],
      mismatched: [{ key: 'b', expected: [5], actual: [4] }],
    });
    assert.equal(isCleanCheck(r), false);
    assert.equal(
      formatCheckReport(r, 3),
      [
        'Missing from the checkpoint (1):',
        '  c',
        'Not used by the model (1):',
        '  extra',
        'Shape mismatch (1):',
        '  b: checkpoint [4], model expects [5]',
      ].join('\n'),
    );
  });
});

// ---------------------------------------------------------------------------------------
// Appended for docs/RELIABILITY.md: zip bombs, malformed zips, more refused globals, memo and
// stack abuse, and a time and memory bound on every hostile input of this file (peak RSS
// sampled every millisecond from a worker thread while the load runs).

import zlib from 'node:zlib';
import { after } from 'node:test';
import { PeakRss } from './helpers/mutate';

const MiB = 2 ** 20;

/**
 * Raw deflate of `mib` MiB of `byte`: one 1 MiB block deflated once and repeated (sync
 * flushes keep each block byte-aligned, and a block only refers back to the same bytes),
 * so a 2.5 GiB bomb is built in milliseconds and takes ~2.6 MB.
 */
function deflatedRun(mib: number, byte = 0): Buffer {
  const block = Buffer.alloc(MiB, byte);
  const first = zlib.deflateRawSync(block, { level: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const next = zlib.deflateRawSync(block, {
    level: 9,
    dictionary: Buffer.alloc(32768, byte),
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const last = zlib.deflateRawSync(Buffer.alloc(0));
  return Buffer.concat([first, ...Array.from({ length: mib - 1 }, () => next), last]);
}

interface RawEntry {
  name: string;
  /** The bytes as stored (compressed when method is 8). */
  data: Uint8Array;
  method?: number;
  /** What the headers claim; default: the truth for stored entries. */
  originalSize?: number;
  /** Reuse the local entry of another name (overlapping entries). */
  sameAs?: string;
}

/** A zip written field by field, so sizes, methods and offsets can lie (fflate's zipSync would not). */
function rawZip(entries: RawEntry[], o: { entryCount?: number; directoryOffset?: number } = {}): Uint8Array {
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  const offsets = new Map<string, number>();
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const method = e.method ?? 0;
    const size = e.originalSize ?? e.data.length;
    const crc = method === 0 ? zlib.crc32(e.data) >>> 0 : 0;
    const at = e.sameAs !== undefined ? offsets.get(e.sameAs)! : offset;
    if (e.sameAs === undefined) {
      const h = Buffer.alloc(30);
      h.writeUInt32LE(0x04034b50, 0);
      h.writeUInt16LE(20, 4);
      h.writeUInt16LE(method, 8);
      h.writeUInt32LE(crc, 14);
      h.writeUInt32LE(e.data.length, 18);
      h.writeUInt32LE(size, 22);
      h.writeUInt16LE(name.length, 26);
      local.push(h, name, Buffer.from(e.data));
      offsets.set(e.name, offset);
      offset += 30 + name.length + e.data.length;
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(e.sameAs !== undefined ? entries.find((x) => x.name === e.sameAs)!.data.length : e.data.length, 20);
    c.writeUInt32LE(size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(at, 42);
    central.push(c, name);
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(o.entryCount ?? entries.length, 8);
  end.writeUInt16LE(o.entryCount ?? entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(o.directoryOffset ?? offset, 16);
  return Buffer.concat([...local, directory, end]);
}

/** A state_dict pickle of one tensor per storage: [name, storage key, class, storage numel, tensor numel (default: all)]. */
function statePickle(tensors: [string, string, StorageClass, number, number?][]): Uint8Array {
  const p = new Pickle().proto();
  return stateDict(
    p,
    tensors.map(([name, key, cls, numel, view]) => [name, { key, cls, numel, shape: [view ?? numel] }]),
  )
    .stop()
    .bytes();
}

const pkl = (name: string, data: Uint8Array, prefix = 'archive'): RawEntry => ({ name: `${prefix}/${name}`, data });
const peak = new PeakRss();
after(() => peak.stop());
/** Largest time and peak-RSS rise seen over every hostile input below, for the log. */
const worst = { ms: 0, mib: 0, count: 0 };

/** A CheckpointError naming `file` and matching `problem`, within `ms` and `mib` of extra peak RSS. */
async function refusedWithin(
  input: Uint8Array,
  file: string,
  problem: RegExp,
  bound = { ms: 2000, mib: 64 },
): Promise<void> {
  const m = await peak.measure(() => loadCheckpoint(input, file));
  assert.ok(
    m.error instanceof CheckpointError,
    `expected a CheckpointError, got ${m.error ? String(m.error) : 'a loaded checkpoint'}`,
  );
  assert.ok(m.error.message.includes(file), m.error.message);
  assert.match(m.error.message, problem);
  assert.ok(m.ms < bound.ms, `${file}: refused after ${m.ms.toFixed(0)} ms`);
  assert.ok(m.riseMiB < bound.mib, `${file}: peak RSS rose ${m.riseMiB.toFixed(0)} MiB`);
  worst.ms = Math.max(worst.ms, m.ms);
  worst.mib = Math.max(worst.mib, m.riseMiB);
  worst.count++;
}

describe('zip bombs: refused from the directory, before anything is inflated', () => {
  test('the rebuilt tiny_soft.pth loads through rawZip (the writer below is sound)', () => {
    const real = fs.readFileSync(path.join(FIXTURES, 'ref', 'tiny_soft.pth'));
    const ck = loadCheckpoint(real);
    const files: RawEntry[] = [];
    for (const [name] of Object.entries(readZipNames(real))) files.push({ name, data: readStored(real, name) });
    assert.equal(loadCheckpoint(rawZip(files), 'rezipped.pth').tensors.size, ck.tensors.size);
  });

  test('a storage that inflates to 2.5 GiB (2.6 MB on disk)', async () => {
    const numel = (2.5 * 2 ** 30) / 4;
    const bomb = deflatedRun(2560);
    // The tensor views 2^28 elements (the most one tensor may have) of the 2.5 GiB storage.
    const zip = rawZip([
      pkl('data.pkl', statePickle([['w', '0', 'FloatStorage', numel, 2 ** 28]])),
      { name: 'archive/data/0', data: bomb, method: 8, originalSize: numel * 4 },
    ]);
    await refusedWithin(zip, 'bomb-storage.pth', /zip entry archive\/data\/0 is larger than 2147483647 bytes/);
  });

  test('a data.pkl that inflates to 300 MiB (300 KB on disk)', async () => {
    const zip = rawZip([
      { name: 'archive/data.pkl', data: deflatedRun(300, 0x4e), method: 8, originalSize: 300 * MiB },
    ]);
    await refusedWithin(zip, 'bomb-pickle.pth', /archive\/data\.pkl is larger than 268435456 bytes/);
  });

  test('three float64 storages of 1.5 GiB each (4.5 GiB of tensor data, 4.7 MB on disk)', async () => {
    const numel = (1.5 * 2 ** 30) / 8;
    const bomb = deflatedRun(1536);
    const zip = rawZip([
      pkl(
        'data.pkl',
        statePickle([
          ['a', '0', 'DoubleStorage', numel],
          ['b', '1', 'DoubleStorage', numel],
          ['c', '2', 'DoubleStorage', numel],
        ]),
      ),
      ...['0', '1', '2'].map((k) => ({ name: `archive/data/${k}`, data: bomb, method: 8, originalSize: numel * 8 })),
    ]);
    await refusedWithin(zip, 'bomb-total.pth', /needs more than 4294967296 bytes of tensor data/);
  });

  test('64 directory entries overlapping one 1 GiB stream (a non-recursive zip bomb)', async () => {
    const numel = 2 ** 30 / 8;
    const keys = Array.from({ length: 64 }, (_, i) => String(i));
    const zip = rawZip([
      pkl('data.pkl', statePickle(keys.map((k) => [`w${k}`, k, 'DoubleStorage', numel]))),
      { name: 'archive/data/0', data: deflatedRun(1024), method: 8, originalSize: 2 ** 30 },
      ...keys.slice(1).map((k) => ({
        name: `archive/data/${k}`,
        data: new Uint8Array(0),
        method: 8,
        originalSize: 2 ** 30,
        sameAs: 'archive/data/0',
      })),
    ]);
    await refusedWithin(zip, 'overlap.pth', /more than the 1073741824 ViT Lens loads|needs more than 4294967296 bytes/);
  });

  test('a directory that understates the size: 16 bytes declared, 1 GiB inflated', async () => {
    const zip = rawZip([
      pkl('data.pkl', statePickle([['w', '0', 'FloatStorage', 4]])),
      { name: 'archive/data/0', data: deflatedRun(1024), method: 8, originalSize: 16 },
    ]);
    await refusedWithin(zip, 'understated.pth', /truncated or corrupt zip archive/);
    const pickleBomb = rawZip([
      { name: 'archive/data.pkl', data: deflatedRun(1024, 0x4e), method: 8, originalSize: 100 },
    ]);
    await refusedWithin(pickleBomb, 'understated-pkl.pth', /truncated or corrupt zip archive/);
  });
});

describe('malformed zips', () => {
  const ok = statePickle([['w', '0', 'FloatStorage', 1]]);
  const cases: [string, () => Uint8Array, RegExp][] = [
    [
      'method12.pth',
      () => rawZip([{ name: 'archive/data.pkl', data: ok, method: 12 }]),
      /zip entry archive\/data\.pkl uses unsupported compression method 12/,
    ],
    [
      'sizes.pth',
      () => rawZip([{ name: 'archive/data.pkl', data: ok, originalSize: ok.length + 5 }]),
      /corrupt zip archive: stored entry archive\/data\.pkl has inconsistent sizes/,
    ],
    [
      'twice.pth',
      () => rawZip([pkl('data.pkl', ok), pkl('data.pkl', ok)]),
      /zip archive lists entry "archive\/data\.pkl" twice/,
    ],
    [
      'two.pth',
      () => rawZip([pkl('data.pkl', ok, 'a'), pkl('data.pkl', ok, 'b')]),
      /zip archive holds several checkpoints \(a, b\)/,
    ],
    [
      'bigendian.pth',
      () => rawZip([pkl('data.pkl', ok), pkl('byteorder', Buffer.from('big'))]),
      /the storages were saved big-endian/,
    ],
    // The end record is checked before fflate trusts it (BUG 5 below).
    [
      'directory-past-end.pth',
      () => rawZip([pkl('data.pkl', ok)], { directoryOffset: 2 ** 31 }),
      /truncated or corrupt zip archive: central directory offset 2147483648 lies past the end of the \d+-byte file/,
    ],
    [
      'forged-count.pth',
      () => rawZip([pkl('data.pkl', ok)], { entryCount: 65535 }),
      /truncated or corrupt zip archive: the end record counts 65535 entries, more than a \d+-byte central directory holds/,
    ],
    [
      'directory-at-0.pth',
      () => rawZip([pkl('data.pkl', ok)], { directoryOffset: 0 }),
      /truncated or corrupt zip archive: central directory entry 0 at byte 0 is not a central header/,
    ],
    [
      'zip64-locator.pth',
      () => {
        // tiny_soft.pth ends with a ZIP64 end record, its locator and the end record; aim the locator elsewhere.
        const real = Buffer.from(fs.readFileSync(path.join(FIXTURES, 'ref', 'tiny_soft.pth')));
        real.writeUInt32LE(1000, real.length - 22 - 20 + 8);
        return real;
      },
      /truncated or corrupt zip archive: the ZIP64 locator points at byte 1000, where there is no ZIP64 end record/,
    ],
    [
      'no-directory.pth',
      () => Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(4096, 0x41)]),
      /truncated or corrupt zip archive/,
    ],
  ];
  for (const [file, make, problem] of cases) {
    test(file, async () => {
      await refusedWithin(make(), file, problem);
    });
  }
});

describe('more globals outside the allow-list, and allow-listed ones abused', () => {
  const sentinel = path.join(os.tmpdir(), `vitlens-pwned-${randomUUID()}`);
  const globals: [string, string][] = [
    ['builtins', 'exec'],
    ['__builtin__', 'eval'],
    ['builtins', 'getattr'],
    ['builtins', '__import__'],
    ['builtins', 'open'],
    ['runpy', '_run_code'],
    ['pickle', 'loads'],
    ['_pickle', 'loads'],
    ['torch.storage', '_load_from_bytes'],
    ['torch', 'load'],
    ['torch.serialization', 'load'],
    ['torch._utils', '_rebuild_tensor'],
    ['torch._utils', '_rebuild_from_type_v2'],
    ['torch.nn.modules.module', 'Module'],
    ['numpy.core.multiarray', '_reconstruct'],
    ['numpy', 'dtype'],
    ['functools', 'partial'],
    ['operator', 'attrgetter'],
    ['codecs', 'encode'],
    ['shutil', 'rmtree'],
    ['webbrowser', 'open'],
    ['nt', 'system'],
  ];
  test(`${globals.length} more module.name calls (GLOBAL + REDUCE) are refused and nothing runs`, async () => {
    for (const [module, name] of globals) {
      const p = new Pickle().proto().global(module, name).mark().str(`touch ${sentinel}`).tuple().reduce().stop();
      await refusedWithin(
        torchZip(p.bytes()),
        `${module}.${name}.pth`,
        new RegExp(`refused to load ${module.replace(/\./g, '\\.')}\\.${name}: not in the allow-list`),
      );
    }
    assert.equal(fs.existsSync(sentinel), false);
  });

  test('allow-listed globals with hostile arguments or a BUILD onto them are refused; the next file is unaffected', async () => {
    const args = new Pickle().proto().global('collections', 'OrderedDict').mark().str('x').tuple().reduce().stop();
    await refusedWithin(torchZip(args.bytes()), 'od-args.pth', /collections\.OrderedDict called with arguments/);
    const rebuild = new Pickle()
      .proto()
      .global('torch._utils', '_rebuild_tensor_v2')
      .mark()
      .str('not a storage')
      .int(0)
      .ints([1])
      .ints([1])
      .bool(false)
      .emptyDict()
      .tuple()
      .reduce()
      .stop();
    await refusedWithin(
      torchZip(rebuild.bytes()),
      'rebuild-args.pth',
      /malformed torch\._utils\._rebuild_tensor_v2 arguments/,
    );
    const storage = new Pickle().proto().global('torch', 'FloatStorage').emptyTuple().reduce().stop();
    await refusedWithin(torchZip(storage.bytes()), 'storage-call.pth', /torch\.FloatStorage called directly/);
    // BUILD sets attributes on the resolved (frozen, per-parse) function: refused, and no later parse sees them.
    const build = new Pickle()
      .proto()
      .global('collections', 'OrderedDict')
      .emptyDict()
      .mark()
      .str('name')
      .str('x')
      .str('__proto__')
      .emptyDict()
      .setitems()
      .build()
      .stop();
    await refusedWithin(torchZip(build.bytes()), 'build.pth', /malformed pickle|unsupported pickle content/);
    assert.equal(loadCheckpoint(path.join(FIXTURES, 'ref', 'tiny_soft.pth')).tensors.size, 137);
  });
});

describe('memo abuse', () => {
  test('a memo slot read before it is written, a slot at 2^32 − 1, 100,000 sparse slots', async () => {
    await refusedWithin(torchZip(new Pickle().proto().binget(5).stop().bytes()), 'unset.pth', /a missing memo entry/);
    const far = new Pickle()
      .proto()
      .emptyList()
      .raw(0x72, 0xff, 0xff, 0xff, 0xff)
      .raw(0x6a, 0xff, 0xff, 0xff, 0xff)
      .stop();
    await refusedWithin(torchZip(far.bytes()), 'far.pth', /not a dict/);
    const sparse = new Pickle().proto().emptyList();
    for (let i = 0; i < 100_000; i++) sparse.raw(0x72).u32((0xfffffff0 - i * 40_000) >>> 0);
    await refusedWithin(torchZip(sparse.stop().bytes()), 'sparse.pth', /not a dict/);
  });
});

describe('every earlier hostile input of this file, again, within 2 s and 64 MiB of peak RSS', () => {
  test('refused within the bounds', async () => {
    const payload = 'touch /nonexistent/vitlens';
    const call = (module: string, name: string) =>
      torchZip(new Pickle().proto().global(module, name).mark().str(payload).tuple().reduce().stop().bytes());
    const state = (spec: TensorSpec, data = new Uint8Array(64)) =>
      torchZip(
        stateDict(new Pickle().proto(), [['w', spec]])
          .stop()
          .bytes(),
        { 0: data },
      );
    const real = fs.readFileSync(path.join(FIXTURES, 'ref', 'tiny_soft.pth'));
    const dag = new Pickle().proto().emptyList().binput(0);
    for (let i = 1; i <= 60; i++)
      dag
        .mark()
        .binget(i - 1)
        .binget(i - 1)
        .text('l')
        .binput(i);
    const inputs: [string, Uint8Array, RegExp][] = [
      ['posix.pth', call('posix', 'system'), /refused to load posix\.system/],
      ['os.pth', call('os', 'system'), /refused to load os\.system/],
      ['eval.pth', call('builtins', 'eval'), /refused to load builtins\.eval/],
      ['popen.pth', call('subprocess', 'Popen'), /refused to load subprocess\.Popen/],
      [
        'stack.pth',
        torchZip(
          new Pickle().proto(4).str('os').str('system').raw(0x93).mark().str(payload).tuple().reduce().stop().bytes(),
        ),
        /refused to load os\.system/,
      ],
      ['inst.pth', torchZip(new Pickle().proto().mark().str(payload).text('ios\nsystem\n').stop().bytes()), /INST/],
      [
        'big.pth',
        state({ key: '0', numel: 1_000_000_000, shape: [4] }, f32(1, 2, 3, 4)),
        /claims 1000000000 float32 elements/,
      ],
      ['stride.pth', state({ key: '0', numel: 16, shape: [4, 4], stride: [4, 100] }), /reaches element 312/],
      [
        'huge.pth',
        state({ key: '0', numel: 16, shape: [2 ** 20, 2 ** 20, 2 ** 20], stride: [0, 0, 0] }),
        /more than 268435456 elements/,
      ],
      [
        'marks.pth',
        torchZip(
          new Uint8Array([0x80, 2, ...new Uint8Array(100_000).fill(0x28), ...new Uint8Array(100_000).fill(0x6c), 0x2e]),
        ),
        /nesting deeper than 100 levels/,
      ],
      [
        'lists.pth',
        torchZip(
          new Uint8Array([0x80, 2, ...new Uint8Array(100_000).fill(0x5d), ...new Uint8Array(99_999).fill(0x61), 0x2e]),
        ),
        /nesting deeper than 100 levels/,
      ],
      [
        'cycle.pth',
        torchZip(new Pickle().proto().emptyList().binput(0).binget(0).append().stop().bytes()),
        /self-referencing/,
      ],
      ['dag.pth', torchZip(dag.stop().bytes()), /not a dict/],
      ['cut.pth', real.subarray(0, Math.floor(real.length * 0.6)), /truncated or corrupt zip/],
      [
        'old.pth',
        new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]),
        /legacy/,
      ],
      ['empty.pth', new Uint8Array(0), /the file is empty/],
    ];
    for (const [file, input, problem] of inputs) await refusedWithin(input, file, problem);
    console.log(
      `  ${worst.count} hostile checkpoints refused; slowest ${worst.ms.toFixed(0)} ms, largest peak-RSS rise ${worst.mib.toFixed(1)} MiB`,
    );
  });
});

describe('regression: pickle value and memo explosion (server bug 4; see docs/RELIABILITY.md)', () => {
  // Bug 4: the pickle scan bounded nesting but not the number of values or memo entries the
  // parser builds, so 8 MiB of EMPTY_LIST (8 KB compressed) took 1.1–1.5 s and +400 MiB, 4M
  // MEMOIZE 2 s and +200 MiB, and a 256 MiB data.pkl (the cap) would need ~10 GB.
  test('small pickles whose opcodes each create a value (8 MiB of EMPTY_LIST, 4M MEMOIZE; a few KB compressed) are refused by the scan within 1 s and 64 MiB', async () => {
    const lists = Buffer.concat([Buffer.from([0x80, 2]), Buffer.alloc(8 * MiB, 0x5d), Buffer.from('.')]);
    const memos = Buffer.concat([Buffer.from([0x80, 4, 0x5d]), Buffer.alloc(4 * MiB, 0x94), Buffer.from('.')]);
    const failures: string[] = [];
    const cases = [
      ['lists.pth', lists, /refused pickle at byte 2000002: EMPTY_LIST makes more than 2000000 values/],
      ['memoize.pth', memos, /refused pickle at byte 1000003: MEMOIZE makes more than 1000000 memo entries/],
    ] as const;
    for (const [file, raw, problem] of cases) {
      const zip = rawZip([
        { name: 'archive/data.pkl', data: zlib.deflateRawSync(raw), method: 8, originalSize: raw.length },
      ]);
      const m = await peak.measure(() => loadCheckpoint(zip, file));
      console.log(
        `  ${file}: ${(zip.length / 1024).toFixed(0)} KB file, ${(raw.length / MiB).toFixed(0)} MiB pickle: ${m.error ? 'refused' : 'loaded'} after ${m.ms.toFixed(0)} ms, peak RSS +${m.riseMiB.toFixed(0)} MiB`,
      );
      if (!(m.error instanceof CheckpointError) || !problem.test(m.error.message))
        failures.push(`${file}: ${String(m.error)}`);
      if (m.ms >= 1000 || m.riseMiB >= 64)
        failures.push(`${file}: ${m.ms.toFixed(0)} ms, +${m.riseMiB.toFixed(0)} MiB`);
    }
    assert.deepEqual(failures, []);
  });

  test('references count as values too: 3M DUPs of one list are refused before the parser grows its stack', async () => {
    const dups = Buffer.concat([Buffer.from([0x80, 2, 0x5d]), Buffer.alloc(3_000_000, 0x32), Buffer.from('.')]);
    await refusedWithin(
      torchZip(dups),
      'dups.pth',
      /refused pickle at byte 2000002: DUP makes more than 2000000 values/,
      { ms: 1000, mib: 64 },
    );
  });
});

describe('regression: unclear message for a corrupt zip directory (server bug 5; see docs/RELIABILITY.md)', () => {
  // Bug 5: fflate does not validate the end-of-central-directory record, so these were refused
  // with messages that blamed the content (no data.pkl; an empty name listed twice).
  test('a zip whose end record points past the file, or counts 65535 entries, is refused as a corrupt zip', async () => {
    const ok = statePickle([['w', '0', 'FloatStorage', 1]]);
    await refusedWithin(
      rawZip([pkl('data.pkl', ok)], { directoryOffset: 2 ** 31 }),
      'directory-past-end.pth',
      /truncated or corrupt zip archive/,
    );
    await refusedWithin(
      rawZip([pkl('data.pkl', ok)], { entryCount: 65535 }),
      'forged-count.pth',
      /truncated or corrupt zip archive/,
    );
  });
});

/** Entry names of a zip, from its central directory (fflate lists them without inflating). */
function readZipNames(bytes: Uint8Array): Record<string, true> {
  const names: Record<string, true> = {};
  unzipSyncFilter(bytes, (name) => void (names[name] = true));
  return names;
}

function readStored(bytes: Uint8Array, name: string): Uint8Array {
  return unzipSyncFilter(bytes, () => {}, name)[name]!;
}

import { unzipSync } from 'fflate';
function unzipSyncFilter(bytes: Uint8Array, each: (name: string) => void, only?: string): Record<string, Uint8Array> {
  return unzipSync(bytes, { filter: (f) => (each(f.name), only === undefined ? false : f.name === only) });
}
