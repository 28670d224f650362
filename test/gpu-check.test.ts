/**
 * The GPU check's decisions (scripts/gpu-check/plan.ts) and the accounting that decides whether its
 * bundle travels (prepare.ts), without running the check itself (minutes; `npm run gpu-check`):
 * the runtime ids read from the CLI's own --backend message; which runtimes run on an H100 machine,
 * on one without a Vulkan loader or with a CPU-only torch, and on this GPU-less machine; each
 * benchmark's time from what is left; the merged report; the size of the working tree as the
 * device machine copies it; and run.sh refusing to start without a bundle.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { WebGpuAdapter } from '../protocol/devices';
import type { BenchCase, BenchReport, RuntimeDescription } from '../protocol/results';
import { UsageError, runtimeArg } from '../server/cli/args';
import { ALL_RUNTIMES } from '../server/runtimes/runner';
import {
  acceptedRuntimes,
  benchSlot,
  chooseRuntimes,
  FULL_BENCH_S,
  KEEP_PER_LATER_S,
  mergeBench,
  sizeBudget,
  summaryText,
  type DevicesView,
} from '../scripts/gpu-check/plan';
import { workingTreeBytes } from '../scripts/gpu-check/prepare';
import { ROOT } from './helpers/fixtures';

const LIMITS = {
  maxStorageBufferBindingSize: 2 ** 31,
  maxBufferSize: 2 ** 34,
  maxComputeWorkgroupStorageSize: 49152,
  maxStorageBuffersPerShaderStage: 16,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupsPerDimension: 65535,
};
const H100_ADAPTER: WebGpuAdapter = {
  vendor: 'nvidia',
  architecture: 'hopper',
  device: 'nvidia-h100-80gb-hbm3',
  description: 'NVIDIA: 570.86.15 570.86.15.0',
  isFallbackAdapter: false,
  software: false,
  backend: 'Vulkan',
  displayName: 'NVIDIA H100 80GB HBM3',
  requestedAs: ['high-performance'],
  limits: LIMITS,
  features: [],
};
const LAVAPIPE: WebGpuAdapter = {
  ...H100_ADAPTER,
  vendor: 'mesa',
  architecture: 'software',
  device: 'llvmpipe-llvm-15-0-6-256-bits-',
  description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1',
  isFallbackAdapter: true,
  software: true,
  displayName: null,
};

/** An H100 machine where everything works; each test takes away what it is about. */
function h100(): DevicesView {
  return {
    host: { cpuModel: 'Intel Xeon Platinum 8480+', cores: 16, node: '20.20.2' },
    onnxruntime: {
      available: true,
      version: '1.30.0',
      backends: [
        { name: 'cpu', bundled: true, installed: true },
        { name: 'webgpu', bundled: true, installed: true },
        { name: 'cuda', bundled: false, installed: true },
      ],
      cuda: { usable: true },
    },
    webgpu: { available: true, adapters: [H100_ADAPTER] },
    nvidia: { available: true, gpus: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', driverVersion: '570.86.15' }] },
    pytorch: {
      available: true,
      python: { executable: '/usr/bin/python3', version: '3.10.12' },
      torch: { version: '2.5.1', cuda: '12.4' },
      devices: [
        { kind: 'cpu', index: 0, name: 'x86_64' },
        { kind: 'cuda', index: 0, name: 'NVIDIA H100 80GB HBM3' },
      ],
      cuda: { available: true },
    },
    gpuVisibility: { webgpuReachesIt: true, diagnosis: null },
  };
}

const run = (d: DevicesView, accepted: readonly string[] = ALL_RUNTIMES, also: string[] = []) =>
  chooseRuntimes(d, [...accepted], also)
    .filter((c) => c.run)
    .map((c) => c.id);
const why = (d: DevicesView, id: string) => chooseRuntimes(d, [...ALL_RUNTIMES]).find((c) => c.id === id)?.why ?? '';

describe('which runtimes the check runs', () => {
  test('the runtime ids come from the CLI’s own --backend message, whatever this file knows', () => {
    let message = '';
    try {
      runtimeArg('?');
    } catch (e) {
      assert.ok(e instanceof UsageError);
      message = e.message;
    }
    assert.deepEqual(acceptedRuntimes(`vitlens: ${message}\n\nUsage: …`), [...ALL_RUNTIMES]);
    assert.equal(acceptedRuntimes('vitlens: internal error'), null);
  });

  test('an H100 with everything: the GPU runtimes first, ORT CPU last, the rest named as not run', () => {
    assert.deepEqual(run(h100()), ['ort-webgpu', 'torch-cuda', 'ort-cuda', 'ort-cpu']);
    assert.match(why(h100(), 'ort-webgpu'), /NVIDIA H100 80GB HBM3 \(hardware, Vulkan\)/);
    assert.match(why(h100(), 'torch-cpu'), /runs on CUDA/);
    assert.match(why(h100(), 'tfjs-webgpu'), /not part of the GPU check/);
  });

  test('no Vulkan loader and a CPU-only torch: WebGPU and torch-cuda are skipped with their reasons, the rest runs', () => {
    const d = h100();
    d.webgpu = { available: false, reason: "Couldn't load Vulkan: libvulkan.so.1 not found", adapters: [] };
    d.pytorch = {
      ...d.pytorch,
      torch: { version: '2.5.1', cuda: null },
      devices: [{ kind: 'cpu', index: 0, name: 'x86_64' }],
      cuda: { available: false, reason: 'this torch build has no CUDA or ROCm support (a CPU-only build)' },
    };
    d.onnxruntime!.cuda = { usable: false, reason: 'libcudnn.so.9 missing' };
    assert.deepEqual(run(d), ['torch-cpu', 'ort-cpu']);
    assert.match(why(d, 'ort-webgpu'), /libvulkan\.so\.1 not found/);
    assert.match(why(d, 'torch-cuda'), /CPU-only build/);
    assert.match(why(d, 'ort-cuda'), /libcudnn\.so\.9 missing/);
  });

  test('a GPU machine whose Vulkan reaches only lavapipe: no minutes spent on a software adapter', () => {
    const d = h100();
    d.webgpu = { available: true, adapters: [LAVAPIPE] };
    d.gpuVisibility = { webgpuReachesIt: false, diagnosis: 'Vulkan sees only llvmpipe; no NVIDIA ICD manifest' };
    assert.deepEqual(run(d), ['torch-cuda', 'ort-cuda', 'ort-cpu']);
    assert.match(why(d, 'ort-webgpu'), /only llvmpipe .*no NVIDIA ICD manifest/);
  });

  test('this machine’s kind (no GPU, lavapipe, torch on the CPU): lavapipe runs, for correctness', () => {
    const d = h100();
    d.webgpu = { available: true, adapters: [LAVAPIPE] };
    d.nvidia = { available: false, reason: 'nvidia-smi not found', gpus: [] };
    d.pytorch = { ...d.pytorch, devices: [{ kind: 'cpu', index: 0, name: 'x86_64' }], cuda: { available: false } };
    d.onnxruntime!.cuda = { usable: true };
    d.gpuVisibility = null;
    assert.deepEqual(run(d), ['ort-webgpu', 'torch-cpu', 'ort-cpu']);
    assert.match(why(d, 'ort-webgpu'), /software .*only a correctness run/);
    assert.match(why(d, 'ort-cuda'), /no NVIDIA GPU is visible/);
  });

  test('a CLI without ort-cuda, and --also for a runtime outside the check', () => {
    const older = ALL_RUNTIMES.filter((id) => id !== 'ort-cuda');
    assert.deepEqual(run(h100(), older), ['ort-webgpu', 'torch-cuda', 'ort-cpu']);
    assert.match(chooseRuntimes(h100(), older).find((c) => c.id === 'ort-cuda')!.why, /has no ort-cuda runtime/);
    assert.deepEqual(run(h100(), [...older, 'torch-cuda-compiled'], ['torch-cuda-compiled']), [
      'ort-webgpu',
      'torch-cuda',
      'ort-cpu',
      'torch-cuda-compiled',
    ]);
    assert.ok(!run(h100(), older, ['no-such-runtime']).includes('no-such-runtime'));
  });
});

describe('time per benchmark', () => {
  test('the full benchmark when each remaining runtime has its share, and later ones always keep theirs', () => {
    const s = benchSlot(3 * FULL_BENCH_S + 30, 3, false);
    assert.deepEqual([s.mode, s.flags], ['full', []]);
    assert.equal(s.timeoutS, 3 * FULL_BENCH_S + 30 - 2 * KEEP_PER_LATER_S);
    assert.deepEqual(benchSlot(3 * 0.7 * FULL_BENCH_S, 3, false).flags, ['--budget-ms', '700']);
    assert.deepEqual(benchSlot(90, 3, false).flags, ['--budget-ms', '250', '--no-scaling']);
    assert.equal(benchSlot(-20, 2, false).timeoutS, 15);
    assert.equal(benchSlot(1000, 1, true).mode, 'quick');
  });

  test('run.sh reads the helper’s answer as "limit<TAB>mode<TAB>flags", also when no time is left', () => {
    const slot = (...a: string[]) =>
      execFileSync(
        process.execPath,
        ['--import', 'tsx', path.join(ROOT, 'scripts', 'gpu-check', 'check.ts'), 'slot', ...a],
        {
          encoding: 'utf8',
        },
      );
    assert.equal(slot('--remaining=-3', '--left=2'), '15\tshort\t--budget-ms 250 --no-scaling\n');
    assert.equal(slot('--remaining=400', '--left=1'), '400\tfull\t\n');
  });
});

describe('the merged report', () => {
  const desc = (id: string): RuntimeDescription =>
    ({
      id,
      runtime: id,
      device: `${id} device`,
      software: false,
      maxBufferBytes: null,
      tokenTileBytes: null,
    }) as RuntimeDescription;
  const report = (id: string, startedAt: string, totalMs: number): BenchReport => ({
    schemaVersion: 1,
    model: 'soft_tiny',
    config: 'SOFT_Tiny.yaml',
    startedAt,
    runtimes: [desc(id)],
    // Each run was asked for one runtime; a runtime another run measured is not "unavailable".
    unavailable: [
      { id: 'torch-cuda' as never, reason: 'not asked' },
      { id: 'tfjs-node' as never, reason: 'not installed' },
    ],
    cases: [{ id: `${id}-1`, runtime: id, group: 'config', status: 'ok' } as unknown as BenchCase],
    scaling: [],
    limits: [],
    overhead: { processStartMs: 100, probeMs: 100, buildMs: 100, sessionMs: 100, totalMs, fraction: 400 / totalMs },
    notes: ['same note', `${id} note`],
  });

  test('runtimes and cases side by side, overhead summed, notes once, unavailable only when nobody measured it', () => {
    const m = mergeBench([report('ort-cpu', '2026-01-02', 1000), report('torch-cuda', '2026-01-01', 3000)]);
    assert.deepEqual(
      m.runtimes.map((r) => r.id),
      ['ort-cpu', 'torch-cuda'],
    );
    assert.equal(m.cases.length, 2);
    assert.deepEqual(m.unavailable, [{ id: 'tfjs-node', reason: 'not installed' }]);
    assert.equal(m.startedAt, '2026-01-01');
    assert.equal(m.overhead.totalMs, 4000);
    assert.equal(m.overhead.fraction, 800 / 4000);
    assert.deepEqual(m.notes, ['same note', 'ort-cpu note', 'torch-cuda note']);
    assert.throws(() => mergeBench([]));
  });
});

describe('the bundle’s size', () => {
  test('the working tree as the device machine copies it: tracked and untracked files, not ignored or deleted ones', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-check-tree-'));
    try {
      const git = (...a: string[]) => execFileSync('git', a, { cwd: dir, stdio: 'ignore' });
      git('init', '-q');
      fs.writeFileSync(path.join(dir, '.gitignore'), '.gpu-check/\n'); // 12 bytes
      fs.writeFileSync(path.join(dir, 'tracked.txt'), 'x'.repeat(1000));
      fs.writeFileSync(path.join(dir, 'gone.txt'), 'x'.repeat(500));
      git('add', '.');
      git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'c');
      fs.rmSync(path.join(dir, 'gone.txt'));
      fs.writeFileSync(path.join(dir, 'untracked.txt'), 'x'.repeat(300));
      fs.mkdirSync(path.join(dir, '.gpu-check'));
      fs.writeFileSync(path.join(dir, '.gpu-check', 'node.xz'), 'x'.repeat(5000));
      assert.equal(workingTreeBytes(dir), 12 + 1000 + 300);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the bundle and the output folder are ignored here: the bundle travels once, as a carried path', () => {
    const r = spawnSync('git', ['check-ignore', '.gpu-check/node.xz', 'gpu-check-out/summary.txt'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.deepEqual(r.stdout.trim().split('\n'), ['.gpu-check/node.xz', 'gpu-check-out/summary.txt']);
  });

  test('60 MiB with the working tree, or prepare fails', () => {
    const MiB = 1024 * 1024;
    const ok = sizeBudget(6 * MiB, [
      { what: 'node.xz', bytes: 21 * MiB },
      { what: 'extension.tar.xz', bytes: 23 * MiB },
    ]);
    assert.equal(ok.total, 50 * MiB);
    assert.ok(ok.fits);
    assert.match(ok.lines.at(-1)!, /fits, 10\.00 MiB to spare/);
    const over = sizeBudget(20 * MiB, [{ what: 'node.xz', bytes: 40 * MiB + 1 }]);
    assert.ok(!over.fits);
    assert.match(over.lines.at(-1)!, /TOO LARGE/);
  });
});

describe('run.sh and the summary', () => {
  test('run.sh without a bundle says how to make one and exits 2', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-check-empty-'));
    try {
      const r = spawnSync(
        'bash',
        [path.join(ROOT, 'scripts', 'gpu-check', 'run.sh'), path.join(empty, 'out'), '--bundle', empty],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(r.status, 2);
      assert.match(r.stderr, /npm run gpu-check:prepare/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });

  test('a missing WebGPU is said, and the tiny checkpoint’s logits are judged', () => {
    const d = h100();
    d.webgpu = { available: false, reason: 'libvulkan.so.1 not found', adapters: [] };
    const infer = (device: string) =>
      ({ runtime: { device }, timingMs: { forward: 3, build: 1, session: 1 }, input: { batch: 1 } }) as never;
    const text = summaryText({
      title: 'check',
      environment: ['Vulkan loader: none'],
      devices: d,
      choices: chooseRuntimes(d, [...ALL_RUNTIMES]),
      steps: [{ name: 'bench-ort-cpu', rc: 124, seconds: 200, note: 'full' }],
      bench: [],
      tiny: [
        { runtime: 'torch-cuda', report: infer('cuda:0 NVIDIA H100'), maxAbsDiff: 3e-7 },
        { runtime: 'ort-cpu', report: infer('16 threads'), maxAbsDiff: 0.5 },
      ],
      softTiny: [{ runtime: 'ort-cpu', report: null }],
      files: ['summary.txt'],
      wallS: 400,
    });
    assert.match(text, /WebGPU: ABSENT — libvulkan\.so\.1 not found/);
    assert.match(text, /NVIDIA GPU 0: NVIDIA H100 80GB HBM3, driver 570\.86\.15/);
    assert.match(text, /torch-cuda on cuda:0 NVIDIA H100: max \|Δlogit\| 3\.00e-7 MATCH/);
    assert.match(text, /ort-cpu on 16 threads: max \|Δlogit\| 5\.00e-1 MISMATCH/);
    assert.match(text, /bench-ort-cpu\s+TIMED OUT/);
  });
});
