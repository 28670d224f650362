/**
 * onnxruntime's CUDA EP, as far as a machine without CUDA can prove it: the ELF reader that lists a
 * provider's libraries (checked on the real onnxruntime binaries against readelf and their known
 * lists), the search for each library (where the loader looks, CUDA toolkits, PyTorch's wheels;
 * on real folders), the report `vitlens devices` gives, the ranking, and the host process the EP
 * runs in: the same process on the CPU EP runs every op case against the float64 reference, and
 * its faults (exit, hang, out-of-memory) are clear errors after which a new host works.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DeviceReport, OrtCudaInfo } from '../protocol/devices';
import { mapWeights, ReferenceRuntime } from '../server/core/engine/lowerings/reference';
import { readElfDynamic } from '../server/runtimes/native/elf-needed';
import { findLibraries, parseLdconfig } from '../server/runtimes/native/find-library';
import { ortChildRunner } from '../server/runtimes/ort/child-runner';
import { CUDA12_PROVIDER_NEEDS, findCudaLibraries, probeOrtCuda } from '../server/runtimes/ort/cuda';
import { probeDevices } from '../server/runtimes/probe';
import { defaultRuntimes, pickBestBackend } from '../server/runtimes/ranking';
import type { Runner } from '../server/runtimes/runner';
import { probeTfjsBackends, tfjsNodeGpuMismatch } from '../server/runtimes/tfjs/load';
import { ROOT } from './helpers/fixtures';
import { cases, maxAbs } from './helpers/op-cases';

const ORT_BIN = path.join(ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-cuda-'));
}

/** An empty file standing in for a library: finding is by name, nothing here loads it. */
function touch(dir: string, name: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), '');
  return path.join(dir, name);
}

describe('reading what a shared library needs (ELF dynamic section)', () => {
  test('libonnxruntime.so.1 (linux-x64): its NEEDED list and $ORIGIN runpath', () => {
    const d = readElfDynamic(path.join(ORT_BIN, 'linux', 'x64', 'libonnxruntime.so.1'));
    assert.deepEqual(d, {
      needed: [
        'libdl.so.2',
        'librt.so.1',
        'libpthread.so.0',
        'libstdc++.so.6',
        'libm.so.6',
        'libgcc_s.so.1',
        'libc.so.6',
        'ld-linux-x86-64.so.2',
      ],
      runpath: ['$ORIGIN'],
    });
  });

  test('the linux-arm64 binding needs its own libonnxruntime and the aarch64 loader', () => {
    const d = readElfDynamic(path.join(ORT_BIN, 'linux', 'arm64', 'onnxruntime_binding.node'))!;
    assert.equal(d.needed[0], 'libonnxruntime.so.1');
    assert.ok(d.needed.includes('ld-linux-aarch64.so.1'));
    assert.deepEqual(d.runpath, ['$ORIGIN/']);
  });

  test('agrees with readelf on every linux binary onnxruntime-node and Dawn ship', (t) => {
    const files = [
      path.join(ORT_BIN, 'linux', 'x64', 'onnxruntime_binding.node'),
      path.join(ORT_BIN, 'linux', 'x64', 'libonnxruntime.so.1'),
      path.join(ORT_BIN, 'linux', 'arm64', 'libonnxruntime.so.1'),
      path.join(ROOT, 'node_modules', 'webgpu', 'dist', 'linux-x64', 'dawn.node'),
    ];
    const probe = spawnSync('readelf', ['--version']);
    if (probe.status !== 0) return t.skip('readelf (binutils) is not installed');
    for (const f of files) {
      const out = spawnSync('readelf', ['-d', f], { encoding: 'utf8' }).stdout;
      const needed = [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
      assert.deepEqual(readElfDynamic(f)!.needed, needed, f);
    }
  });

  test('a file that is not a 64-bit little-endian ELF reads as null, truncated ones too', () => {
    const dir = tempDir();
    assert.equal(readElfDynamic(path.join(ROOT, 'package.json')), null);
    assert.equal(readElfDynamic(path.join(ORT_BIN, 'win32', 'x64', 'onnxruntime.dll')), null);
    const whole = fs.readFileSync(path.join(ORT_BIN, 'linux', 'x64', 'libonnxruntime.so.1'));
    fs.writeFileSync(path.join(dir, 'cut.so'), whole.subarray(0, 200));
    assert.equal(readElfDynamic(path.join(dir, 'cut.so')), null);
    fs.writeFileSync(path.join(dir, 'empty.so'), '');
    assert.equal(readElfDynamic(path.join(dir, 'empty.so')), null);
  });
});

describe("finding a provider's libraries", () => {
  test('ldconfig -p: 64-bit entries kept, the first of each name wins', () => {
    const cache = parseLdconfig(
      [
        '3 libs found in cache `/etc/ld.so.cache`',
        '\tlibcudart.so.12 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudart.so.12',
        '\tlibz.so.1 (libc6) => /usr/lib32/libz.so.1',
        '\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1',
      ].join('\n'),
    );
    assert.deepEqual(
      [...cache],
      [
        ['libcudart.so.12', '/usr/lib/x86_64-linux-gnu/libcudart.so.12'],
        ['libz.so.1', '/lib/x86_64-linux-gnu/libz.so.1'],
      ],
    );
  });

  test("this machine's loader cache: libc.so.6 is where the cache says, and exists", (t) => {
    const r = spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' });
    if (r.status !== 0) return t.skip('no ldconfig');
    const libc = parseLdconfig(r.stdout).get('libc.so.6');
    assert.ok(libc && fs.existsSync(libc), `libc.so.6 → ${libc}`);
  });

  test('each place in order: LD_LIBRARY_PATH, RUNPATH, cache, then CUDA_PATH and the PyTorch wheels (those go on the path)', () => {
    const root = tempDir();
    const ld = path.join(root, 'ld');
    const toolkit = path.join(root, 'cuda-12.4');
    const wheels = path.join(root, 'site-packages', 'nvidia', 'cudnn', 'lib');
    touch(ld, 'libcublas.so.12');
    touch(path.join(toolkit, 'lib64'), 'libcudart.so.12');
    touch(path.join(toolkit, 'lib64'), 'libcublas.so.12'); // shadowed by LD_LIBRARY_PATH
    touch(wheels, 'libcudnn.so.9');
    touch(wheels, 'libcudart.so.12'); // shadowed by the toolkit
    const found = findLibraries(
      ['libcublas.so.12', 'libcudart.so.12', 'libcudnn.so.9', 'libz.so.1', 'libnothing.so.7'],
      {
        env: { LD_LIBRARY_PATH: ld, CUDA_PATH: toolkit },
        runpath: [],
        pytorchDirs: [wheels],
        ldCache: new Map([['libz.so.1', '/lib/x86_64-linux-gnu/libz.so.1']]),
      },
    );
    assert.deepEqual(
      found.libraries.map((l) => [l.soname, l.via, l.path]),
      [
        ['libcublas.so.12', 'LD_LIBRARY_PATH', path.join(ld, 'libcublas.so.12')],
        ['libcudart.so.12', 'CUDA toolkit', path.join(toolkit, 'lib64', 'libcudart.so.12')],
        ['libcudnn.so.9', 'PyTorch pip package', path.join(wheels, 'libcudnn.so.9')],
        ['libz.so.1', 'loader cache', '/lib/x86_64-linux-gnu/libz.so.1'],
        ['libnothing.so.7', null, null],
      ],
    );
    // Only what the loader would not find by itself is added.
    assert.deepEqual(found.libraryPath, [path.join(toolkit, 'lib64'), wheels]);
  });

  test("an installed provider's own list is read, and $ORIGIN is its folder", () => {
    const dir = tempDir();
    // A real ELF whose NEEDED is [libonnxruntime.so.1, C++ runtime…] with RUNPATH $ORIGIN/.
    const provider = path.join(dir, 'libonnxruntime_providers_cuda.so');
    fs.copyFileSync(path.join(ORT_BIN, 'linux', 'arm64', 'onnxruntime_binding.node'), provider);
    touch(dir, 'libonnxruntime.so.1');
    const found = findCudaLibraries({
      providerFile: provider,
      env: {},
      pytorchDirs: [],
      ldCache: new Map(),
      toolkitRoots: [],
    });
    assert.deepEqual(
      found.libraries.map((l) => [l.soname, l.via]),
      [['libonnxruntime.so.1', 'RUNPATH']],
      'the C/C++ runtime is left out; the one library comes from the provider folder',
    );
    assert.deepEqual(found.libraryPath, []);
  });

  test('probeOrtCuda: not installed says how to get it and which CUDA 12 libraries are here', () => {
    const pkg = tempDir();
    const wheels = path.join(pkg, 'nvidia', 'cublas', 'lib');
    touch(wheels, 'libcublas.so.12');
    touch(wheels, 'libcublasLt.so.12');
    const info = probeOrtCuda(pkg, { env: {}, pytorchDirs: [wheels], ldCache: new Map(), toolkitRoots: [] });
    assert.equal(info.providerLibrary, null);
    assert.equal(info.usable, false);
    assert.deepEqual(
      info.libraries.map((l) => l.soname),
      CUDA12_PROVIDER_NEEDS,
    );
    assert.match(info.reason!, /^not installed: .*ONNXRUNTIME_NODE_INSTALL=cuda12/);
    assert.match(
      info.reason!,
      /2 of 6 are here \(missing: libcudart\.so\.12, libcufft\.so\.11, libcurand\.so\.10, libcudnn\.so\.9\)/,
    );
  });

  test('probeOrtCuda on a CUDA 13 machine says the CUDA 12 EP cannot use it', () => {
    const pkg = tempDir();
    const wheels = path.join(pkg, 'nvidia', 'cu13', 'lib');
    touch(wheels, 'libcudart.so.13');
    const info = probeOrtCuda(pkg, { env: {}, pytorchDirs: [wheels], ldCache: new Map(), toolkitRoots: [] });
    assert.match(
      info.reason!,
      new RegExp(
        `this machine has CUDA 13 \\(${path.join(wheels, 'libcudart.so.13')}\\), and onnxruntime-node offers its CUDA EP for CUDA 12 only`,
      ),
    );
  });

  test('probeOrtCuda: installed with a library missing names it; with all found it is usable', () => {
    const pkg = tempDir();
    const bin = path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
    fs.mkdirSync(bin, { recursive: true });
    fs.copyFileSync(
      path.join(ORT_BIN, 'linux', 'arm64', 'onnxruntime_binding.node'),
      path.join(bin, 'libonnxruntime_providers_cuda.so'),
    );
    let info: OrtCudaInfo = probeOrtCuda(pkg, { env: {}, pytorchDirs: [], ldCache: new Map() });
    assert.equal(info.providerLibrary, path.join(bin, 'libonnxruntime_providers_cuda.so'));
    assert.equal(info.usable, false);
    assert.match(info.reason!, /^installed, but libonnxruntime\.so\.1 is nowhere/);
    const elsewhere = path.join(pkg, 'cuda', 'lib64');
    touch(elsewhere, 'libonnxruntime.so.1');
    info = probeOrtCuda(pkg, {
      env: { CUDA_PATH: path.join(pkg, 'cuda') },
      pytorchDirs: [],
      ldCache: new Map(),
    });
    assert.equal(info.usable, true);
    assert.deepEqual(info.libraryPath, [elsewhere]);
  });
});

describe('the CUDA EP in devices and the ranking', () => {
  let report: DeviceReport;
  before(async () => {
    report = await probeDevices({ webgpu: false, nvidia: false, pytorch: false });
  });

  test('here (no provider installed): devices says why, and ort-cuda is ranked unavailable and not run', () => {
    const cuda = report.onnxruntime.cuda!;
    assert.equal(cuda.providerLibrary, null);
    assert.equal(cuda.usable, false);
    assert.match(cuda.reason!, /not installed/);
    const backend = report.onnxruntime.backends.find((b) => b.name === 'cuda')!;
    assert.equal(backend.installed, false);
    assert.equal(backend.reason, cuda.reason);
    const ranked = pickBestBackend(report).find((c) => c.backend === 'ort-cuda')!;
    assert.equal(ranked.status, 'unavailable');
    assert.ok(!defaultRuntimes(report).includes('ort-cuda'));
  });

  test('a usable EP with a GPU is preferred and runs by default; without a GPU it says so', () => {
    const usable: OrtCudaInfo = {
      providerLibrary: '/x/libonnxruntime_providers_cuda.so',
      libraries: [],
      libraryPath: ['/opt/cuda/lib64'],
      usable: true,
    };
    const gpu: DeviceReport = {
      ...report,
      onnxruntime: { ...report.onnxruntime, cuda: usable },
      nvidia: {
        available: true,
        gpus: [
          { index: 0, name: 'NVIDIA H100 80GB HBM3', memoryUsedMiB: 0, memoryTotalMiB: 81559, driverVersion: '550.54' },
        ],
      },
    };
    const ranked = pickBestBackend(gpu).find((c) => c.backend === 'ort-cuda')!;
    assert.equal(ranked.status, 'preferred');
    assert.match(ranked.reason, /\/opt\/cuda\/lib64 on LD_LIBRARY_PATH/);
    assert.deepEqual(defaultRuntimes(gpu).slice(0, 2), ['ort-cuda', 'ort-cpu']);
    const noGpu = { ...gpu, nvidia: { available: false, reason: 'nvidia-smi not found', gpus: [] } };
    const r = pickBestBackend(noGpu).find((c) => c.backend === 'ort-cuda')!;
    assert.equal(r.status, 'unavailable');
    assert.match(r.reason, /no NVIDIA GPU is visible \(nvidia-smi not found\)/);
  });
});

describe('tfjs-node-gpu on a CUDA 12 machine', () => {
  test('names the CUDA 11 / cuDNN 8 libraries it would load and the CUDA this machine has; silent without a GPU', async () => {
    const base = await probeDevices({ webgpu: false, nvidia: false, pytorch: false });
    assert.equal(tfjsNodeGpuMismatch(base), null, 'no GPU known: nothing to say');
    const wheels = path.join(tempDir(), 'nvidia', 'cudnn', 'lib');
    touch(wheels, 'libcudnn.so.8');
    const gpu: DeviceReport = {
      ...base,
      nvidia: {
        available: true,
        gpus: [{ index: 0, name: 'NVIDIA H100', memoryUsedMiB: 0, memoryTotalMiB: 81559, driverVersion: '570.1' }],
      },
      pytorch: {
        ...base.pytorch,
        torch: { version: '2.6.0', cuda: '12.4', hip: null, compile: base.pytorch.torch?.compile as never },
        libraryDirs: [wheels],
      },
    };
    assert.equal(
      tfjsNodeGpuMismatch(gpu),
      "it could not use this GPU anyway: libtensorflow 2.9.1's GPU build needs CUDA 11.2 and cuDNN 8.1, and this machine's PyTorch is built for CUDA 12.4; libcudart.so.11.0 is not here (tfjs issue 8362: no build for CUDA 12 or 13). Use torch-cuda, ort-webgpu or ort-cuda",
    );
    const probes = await probeTfjsBackends(gpu);
    assert.match(
      probes.find((p) => p.name === 'tfjs-node-gpu')!.reason!,
      /is not installed\. .* And it could not use this GPU anyway/,
    );
  });
});

describe('the onnxruntime host process (CPU EP: the same path the CUDA EP takes)', () => {
  let report: DeviceReport;
  let runner: Runner;
  before(async () => {
    report = await probeDevices({ webgpu: false, nvidia: false, pytorch: false });
    runner = await ortChildRunner('cpu', report);
  });
  after(async () => {
    await runner?.close();
  });

  test('ort-cuda refuses to open here, with the reason devices gives', async () => {
    await assert.rejects(ortChildRunner('cuda', report), /onnxruntime's CUDA EP is not usable: not installed/);
  });

  for (const c of cases())
    test(`op case vs the float64 reference: ${c.name}`, async () => {
      const ws = mapWeights(c.weights);
      const ref = new ReferenceRuntime('float64').run(c.graph, c.inputs, ws, c.outputs);
      const prepared = await runner.prepare(c.graph, c.outputs, ws);
      try {
        const got = await prepared.run(c.inputs);
        assert.equal(got.length, c.outputs.length);
        got.forEach((o, i) => {
          const r = ref[i]!;
          assert.deepEqual(o.shape, [...r.shape], `${c.name}: output ${i} shape`);
          let d = 0;
          for (let j = 0; j < r.data.length; j++) d = Math.max(d, Math.abs(o.data[j]! - r.data[j]!));
          assert.ok(d <= (c.tol ?? 2e-6) * Math.max(1, maxAbs(r.data)), `${c.name}: output ${i} max |diff| ${d}`);
        });
        const ms = await prepared.timedRun!(c.inputs);
        assert.ok(ms > 0 && ms < 10_000, `timed in the host: ${ms} ms`);
      } finally {
        await prepared.release();
      }
    });

  for (const [fault, expected] of [
    ['exit:run', /onnxruntime-node .* CPU EP \(host process\) exited with code 3/],
    ['oom:run', /CUDA failure 2: out of memory/],
    ['hang:run', /did not answer "run" within 3 s/],
  ] as const)
    test(`fault ${fault}: a clear error naming the runtime, and a new host works`, async () => {
      const c = cases()[0]!;
      const ws = mapWeights(c.weights);
      process.env.VITLENS_ORT_HOST_FAULT = fault;
      process.env.VITLENS_ORT_HOST_TIMEOUT_MS = '3000';
      let faulty: Runner | undefined;
      try {
        faulty = await ortChildRunner('cpu', report);
      } finally {
        delete process.env.VITLENS_ORT_HOST_FAULT;
        delete process.env.VITLENS_ORT_HOST_TIMEOUT_MS;
      }
      try {
        const prepared = await faulty.prepare(c.graph, c.outputs, ws);
        await assert.rejects(prepared.run(c.inputs), (e: Error & { kind?: string }) => {
          assert.match(e.message, expected);
          if (fault === 'oom:run') assert.equal(e.kind, 'out-of-memory');
          return true;
        });
      } finally {
        await faulty.close();
      }
      const fresh = await ortChildRunner('cpu', report);
      try {
        const prepared = await fresh.prepare(c.graph, c.outputs, ws);
        assert.equal((await prepared.run(c.inputs)).length, c.outputs.length);
      } finally {
        await fresh.close();
      }
    });
});
