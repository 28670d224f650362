/**
 * scripts/native-header.ts and the per-target check built on it (scripts/targets.ts), which fail
 * the packaging when a VSIX holds a binary of another platform. The parser is checked on the real
 * binaries onnxruntime-node and webgpu ship for every platform (installed here whatever the host),
 * with the exact format and architecture each must read as, and on hand-built buffers: truncated
 * or garbage input must read as "unknown", never throw. The check is shown to fail on a foreign
 * binary, an unrecognised one, a wrong folder and a missing one, not only to pass.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { describeHeader, HEADER_BYTES, mismatch, readBinaryHeader, type BinaryHeader } from '../scripts/native-header';
import { TARGET_FACTS, TARGETS, targetProblems, vscodeignoreFor } from '../scripts/targets';
import { ROOT } from './helpers/fixtures';

const ORT = path.join(ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
const DAWN = path.join(ROOT, 'node_modules', 'webgpu', 'dist');
const WASM = path.join(ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist', 'tfjs-backend-wasm.wasm');

function head(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(HEADER_BYTES);
    return b.subarray(0, fs.readSync(fd, b, 0, HEADER_BYTES, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/** The fields that matter, without `reason`, so deepEqual pins them exactly. */
function summary(h: BinaryHeader): Omit<BinaryHeader, 'reason'> {
  const { reason: _reason, ...rest } = h;
  return rest;
}

describe('headers of real binaries', () => {
  const cases: [string, Omit<BinaryHeader, 'reason'>][] = [
    [path.join(ORT, 'linux/x64/onnxruntime_binding.node'), { format: 'elf', bits: 64, machines: ['x64'] }],
    [path.join(ORT, 'linux/x64/libonnxruntime.so.1'), { format: 'elf', bits: 64, machines: ['x64'] }],
    [path.join(ORT, 'linux/arm64/onnxruntime_binding.node'), { format: 'elf', bits: 64, machines: ['arm64'] }],
    [path.join(ORT, 'darwin/arm64/onnxruntime_binding.node'), { format: 'mach-o', bits: 64, machines: ['arm64'] }],
    [path.join(ORT, 'darwin/arm64/libonnxruntime.1.dylib'), { format: 'mach-o', bits: 64, machines: ['arm64'] }],
    [path.join(ORT, 'win32/x64/onnxruntime_binding.node'), { format: 'pe', bits: 64, machines: ['x64'] }],
    [path.join(ORT, 'win32/x64/DirectML.dll'), { format: 'pe', bits: 64, machines: ['x64'] }],
    [path.join(ORT, 'win32/arm64/onnxruntime_binding.node'), { format: 'pe', bits: 64, machines: ['arm64'] }],
    [path.join(DAWN, 'linux-x64/dawn.node'), { format: 'elf', bits: 64, machines: ['x64'] }],
    [path.join(DAWN, 'linux-arm64/dawn.node'), { format: 'elf', bits: 64, machines: ['arm64'] }],
    [path.join(DAWN, 'win32-x64/dawn.node'), { format: 'pe', bits: 64, machines: ['x64'] }],
    [
      path.join(DAWN, 'darwin-universal/dawn.node'),
      { format: 'mach-o', bits: 64, machines: ['x64', 'arm64'], universal: true },
    ],
    [WASM, { format: 'wasm', machines: [] }],
  ];
  for (const [file, want] of cases) {
    test(path.relative(path.join(ROOT, 'node_modules'), file), () => {
      assert.deepEqual(summary(readBinaryHeader(head(file))), want);
    });
  }

  test('descriptions name the format and every architecture', () => {
    assert.equal(
      describeHeader(readBinaryHeader(head(path.join(DAWN, 'darwin-universal/dawn.node')))),
      'Mach-O universal (x64, arm64)',
    );
    assert.equal(describeHeader(readBinaryHeader(head(path.join(ORT, 'win32/x64/dxil.dll')))), 'PE 64-bit x64');
    assert.equal(
      describeHeader(readBinaryHeader(head(path.join(ORT, 'linux/arm64/libonnxruntime.so.1')))),
      'ELF 64-bit arm64',
    );
  });
});

describe('truncated and garbage input reads as unknown', () => {
  const real = [
    path.join(ORT, 'linux/x64/onnxruntime_binding.node'),
    path.join(ORT, 'darwin/arm64/onnxruntime_binding.node'),
    path.join(ORT, 'win32/x64/onnxruntime_binding.node'),
    path.join(DAWN, 'darwin-universal/dawn.node'),
  ];

  test('every prefix of a real header: unknown, or the full answer once enough is there', () => {
    for (const file of real) {
      const b = head(file);
      const full = summary(readBinaryHeader(b));
      let firstKnown = -1;
      for (let n = 0; n <= 600; n++) {
        const h = readBinaryHeader(b.subarray(0, n));
        if (h.format === 'unknown') {
          assert.ok(h.reason, `${file} at ${n} bytes says why`);
          assert.equal(firstKnown, -1, `${file}: known at ${firstKnown} bytes, unknown again at ${n}`);
        } else {
          if (firstKnown < 0) firstKnown = n;
          assert.deepEqual(summary(h), full, `${file} read from ${n} bytes`);
        }
      }
      assert.ok(firstKnown > 4, `${file} needs more than its magic (known from ${firstKnown} bytes)`);
    }
  });

  test('the bytes each format needs', () => {
    const elf = head(real[0]!);
    assert.equal(readBinaryHeader(elf.subarray(0, 19)).format, 'unknown');
    assert.equal(readBinaryHeader(elf.subarray(0, 20)).format, 'elf');
    const fat = head(real[3]!); // 2 architectures: 8 + 2 × 20 bytes
    assert.equal(readBinaryHeader(fat.subarray(0, 47)).format, 'unknown');
    assert.deepEqual(readBinaryHeader(fat.subarray(0, 48)).machines, ['x64', 'arm64']);
  });

  test('hand-built buffers', () => {
    const buf = (...bytes: number[]) => Buffer.from(bytes);
    const cases: [string, Buffer][] = [
      ['empty', buf()],
      ['three bytes', buf(0x7f, 0x45, 0x4c)],
      ['ELF magic only', buf(0x7f, 0x45, 0x4c, 0x46)],
      ['ELF with class 7', Buffer.concat([buf(0x7f, 0x45, 0x4c, 0x46, 7, 1), Buffer.alloc(20)])],
      ['MZ only', buf(0x4d, 0x5a)],
      [
        'MZ with e_lfanew past the end',
        (() => {
          const b = Buffer.alloc(0x40);
          b.write('MZ', 0, 'latin1');
          b.writeUInt32LE(0xffffffff, 0x3c);
          return b;
        })(),
      ],
      [
        'MZ without PE signature (a DOS program)',
        (() => {
          const b = Buffer.alloc(0x80);
          b.write('MZ', 0, 'latin1');
          b.writeUInt32LE(0x40, 0x3c);
          b.write('NE', 0x40, 'latin1');
          return b;
        })(),
      ],
      ['Java class file (0xcafebabe, version 52)', buf(0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 0x34, 0, 0x10)],
      ['fat Mach-O with no architectures', buf(0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 0)],
      ['fat Mach-O whose table is cut', buf(0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2, 1, 0, 0, 7)],
      ['thin Mach-O magic only', buf(0xcf, 0xfa, 0xed, 0xfe)],
      ['text', Buffer.from('#!/usr/bin/env node\nconsole.log(1)\n')],
    ];
    for (const [what, b] of cases) {
      const h = readBinaryHeader(b);
      assert.equal(h.format, 'unknown', `${what}: ${describeHeader(h)}`);
      assert.deepEqual(h.machines, [], what);
    }
  });

  test('random bytes never throw', () => {
    // A fixed linear congruential sequence: the same bytes every run.
    let s = 12345;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(Array.from({ length: i % 97 }, rnd));
      // Half of them start with a real magic so the format branches run on garbage after it.
      const magics = [
        [0x7f, 0x45, 0x4c, 0x46],
        [0xcf, 0xfa, 0xed, 0xfe],
        [0xca, 0xfe, 0xba, 0xbe],
        [0x4d, 0x5a],
      ];
      if (i % 2 && b.length >= 4) Buffer.from(magics[i % magics.length]!).copy(b);
      assert.doesNotThrow(() => readBinaryHeader(b));
    }
  });
});

describe('a binary fits its target, or the packaging fails', () => {
  const h = (file: string) => readBinaryHeader(head(file));
  const universal = h(path.join(DAWN, 'darwin-universal/dawn.node'));

  test('each target accepts its own binaries and refuses the others', () => {
    const own: Record<string, string> = {
      'linux-x64': path.join(ORT, 'linux/x64/onnxruntime_binding.node'),
      'linux-arm64': path.join(ORT, 'linux/arm64/onnxruntime_binding.node'),
      'darwin-arm64': path.join(ORT, 'darwin/arm64/onnxruntime_binding.node'),
      'win32-x64': path.join(ORT, 'win32/x64/onnxruntime_binding.node'),
    };
    for (const t of TARGETS) {
      for (const [u, file] of Object.entries(own)) {
        const why = mismatch(h(file), TARGET_FACTS[t].binary, true);
        if (u === t) assert.equal(why, null, `${t} takes its own binding`);
        else assert.ok(why, `${t} refuses ${u}'s binding`);
      }
    }
  });

  test('a universal Mach-O fits darwin-arm64 when it holds arm64, not otherwise', () => {
    assert.equal(mismatch(universal, TARGET_FACTS['darwin-arm64'].binary, true), null);
    const x64Only: BinaryHeader = { format: 'mach-o', bits: 64, machines: ['x64'], universal: true };
    assert.match(mismatch(x64Only, TARGET_FACTS['darwin-arm64'].binary, true) ?? '', /universal \(x64\), not arm64/);
  });

  test('WebAssembly fits every target; an unrecognised file fits only when not named like native code', () => {
    for (const t of TARGETS) assert.equal(mismatch(h(WASM), TARGET_FACTS[t].binary, false), null);
    const junk = readBinaryHeader(Buffer.from('not a binary'));
    assert.equal(mismatch(junk, TARGET_FACTS['linux-x64'].binary, false), null);
    assert.match(mismatch(junk, TARGET_FACTS['linux-x64'].binary, true) ?? '', /not a recognised binary/);
  });

  /** A VSIX listing for `target` built from its real required files, to add faults to. */
  function vsixOf(target: 'linux-x64' | 'darwin-arm64') {
    const f = TARGET_FACTS[target];
    const ortFiles = f.ort.files.map((n) => ({
      name: `extension/node_modules/onnxruntime-node/bin/napi-v6/${f.ort.dir}/${n}`,
      header: h(path.join(ORT, f.ort.dir, n)),
      nativeName: true,
    }));
    const dawn = {
      name: `extension/node_modules/webgpu/dist/${f.dawn}/dawn.node`,
      header: h(path.join(DAWN, f.dawn, 'dawn.node')),
      nativeName: true,
    };
    const wasm = {
      name: 'extension/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm',
      header: h(WASM),
      nativeName: false,
    };
    // sharp's packages for darwin are not installed here: their names, with the ORT binding's header.
    const sharpHeader = ortFiles[0]!.header;
    const sharp =
      target === 'linux-x64'
        ? [
            '@img/sharp-linux-x64/lib/sharp-linux-x64-0.35.5.node',
            '@img/sharp-libvips-linux-x64/lib/libvips-cpp.so.8.18.7',
          ]
        : [
            '@img/sharp-darwin-arm64/lib/sharp-darwin-arm64-0.35.5.node',
            '@img/sharp-libvips-darwin-arm64/lib/libvips-cpp.8.18.7.dylib',
          ];
    const files = [
      ...ortFiles,
      dawn,
      wasm,
      ...sharp.map((n) => ({ name: `extension/node_modules/${n}`, header: sharpHeader, nativeName: true })),
    ];
    return { files, names: files.map((x) => x.name) };
  }

  test('a complete VSIX of real binaries passes', () => {
    for (const t of ['linux-x64', 'darwin-arm64'] as const) {
      const v = vsixOf(t);
      assert.deepEqual(targetProblems(v.files, v.names, t), [], t);
    }
  });

  test('a foreign binary fails, naming the file, what it is and the target', () => {
    const v = vsixOf('linux-x64');
    // linux-arm64's binding in linux-x64's folder: the path looks right, the header does not.
    const bad = v.files.find((f) => f.name.endsWith('linux/x64/onnxruntime_binding.node'))!;
    bad.header = h(path.join(ORT, 'linux/arm64/onnxruntime_binding.node'));
    assert.deepEqual(targetProblems(v.files, v.names, 'linux-x64'), [
      'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node: ELF 64-bit arm64, not x64 (target linux-x64 needs elf x64)',
    ]);
    const w = vsixOf('darwin-arm64');
    w.files.push({
      name: 'extension/node_modules/onnxruntime-node/bin/napi-v6/win32/x64/dxil.dll',
      header: h(path.join(ORT, 'win32/x64/dxil.dll')),
      nativeName: true,
    });
    assert.deepEqual(targetProblems(w.files, w.names, 'darwin-arm64'), [
      'node_modules/onnxruntime-node/bin/napi-v6/win32/x64/dxil.dll: PE 64-bit x64, not mach-o (target darwin-arm64 needs mach-o arm64)',
    ]);
  });

  test('a right binary in another platform’s folder fails, and so does a missing one', () => {
    const v = vsixOf('linux-x64');
    v.files.push({
      name: 'extension/node_modules/foo/prebuilds/linux-arm64/foo.node',
      header: h(path.join(ORT, 'linux/x64/onnxruntime_binding.node')),
      nativeName: true,
    });
    const names = v.names.filter((n) => !n.endsWith('dawn.node'));
    const problems = targetProblems(v.files, names, 'linux-x64');
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(
      problems[0]!,
      /foo\/prebuilds\/linux-arm64\/foo\.node: ELF 64-bit x64 in a folder named for another platform/,
    );
    assert.match(problems[1]!, /missing for linux-x64: .*webgpu.*linux-x64.*dawn/);
  });
});

describe('.vscodeignore per target', () => {
  const template = fs.readFileSync(path.join(ROOT, '.vscodeignore'), 'utf8');

  test('every placeholder is filled, with the target’s folders only', () => {
    for (const t of TARGETS) {
      const out = vscodeignoreFor(template, t);
      const patterns = out.split('\n').filter((l) => l && !l.startsWith('#'));
      assert.deepEqual(
        patterns.filter((l) => l.includes('{{')),
        [],
        t,
      );
      const f = TARGET_FACTS[t];
      assert.ok(patterns.includes(`!node_modules/webgpu/dist/${f.dawn}/**`), `${t}: Dawn's folder`);
      assert.ok(patterns.includes(`!node_modules/@img/sharp-${t}/lib/**`), `${t}: sharp's binding`);
      const ort = patterns.find((l) => l.startsWith('!node_modules/onnxruntime-node/bin/'));
      assert.equal(ort, `!node_modules/onnxruntime-node/bin/napi-v*/${f.ort.dir}/{${f.ort.files.join(',')}}`);
      for (const u of TARGETS.filter((u) => u !== t))
        assert.ok(!patterns.some((l) => l.includes(u)), `${t}'s allow-list names no ${u} path`);
    }
    assert.ok(!vscodeignoreFor(template, 'darwin-arm64').includes('libonnxruntime.1.30.0.dylib'));
  });

  test('an unknown placeholder is an error', () => {
    assert.throws(
      () => vscodeignoreFor('!node_modules/{{nope}}/**\n', 'linux-x64'),
      /unknown placeholder \{\{nope\}\}/,
    );
  });
});
