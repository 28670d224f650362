/**
 * The benchmark harness and the pinv analysis as a user runs them (the `vitlens` CLI over the
 * bundle), and the worker isolation the language server relies on. Figures are checked
 * against independent computations and newton.json, never against timings.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { RuntimeDescription } from '../protocol/results';
import type { DeviceReport } from '../protocol/devices';
import { startGpuMemorySampler, type GpuMemorySample } from '../server/runtimes/nvidia';
import { probeDevices } from '../server/runtimes/probe';
import { caseGpuSampler, gpuMemoryFigure, runBenchmark, theilSenExponent } from '../server/jobs/bench/harness';
import { fitPowerLaw } from '../server/jobs/bench/stats';
import { runIsolated, WorkerFailure } from '../server/jobs/isolate';
import { WEBGPU_LIVE_TENSORS_LABEL } from '../server/runtimes/ort/runner';
import { shutdownTfjs } from '../server/runtimes/tfjs/load';
import { attentionLayer, attentionPrefix, layerContext } from '../server/core/engine/blocks';
import { graphCost } from '../server/core/engine/cost';
import { Graph, operandsOf } from '../server/core/engine/graph';
import type { AttentionKind } from '../server/core/models/spec';
import { numel } from '../server/core/shape';
import { readJson, ROOT, SOFT_CONFIGS, specOf } from './helpers/fixtures';

const noWebGpu = process.env.VITLENS_NO_WEBGPU === '1';

function vitlens(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vitlens.js'), ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
    maxBuffer: 64 << 20,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tiny = path.join('fixtures', 'configs', 'soft', 'SOFT_Tiny.yaml');

describe('vitlens pinv', () => {
  test('--matrices newton.json --float64: every per-iteration residual equals the official trace', () => {
    const r = vitlens('pinv', '--matrices', path.join('fixtures', 'ref', 'newton.json'), '--float64', '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const ref = readJson('ref/newton.json').cases;
    assert.equal(out.matrices.length, Object.keys(ref).length);
    for (const m of out.matrices) {
      const rows = ref[m.name].iterations_float64;
      assert.equal(m.iterations.length, rows.length);
      for (const it of m.iterations) {
        const want = rows[it.k].fro_I_minus_Areg_V;
        // newton.json's P uses an exact 0.01; the official iteration (and ours) adds float32(0.01): ≤ 2.3e-10·‖V‖ apart.
        assert.ok(Math.abs(it.residual - want) <= 1e-6 * want + 1e-8, `${m.name} k=${it.k}: ${it.residual} vs ${want}`);
        assert.ok(
          Math.abs(it.penrose - rows[it.k].rel_fro_AVA_minus_A) <= 1e-6 * rows[it.k].rel_fro_AVA_minus_A + 1e-9,
          `${m.name} k=${it.k}: Penrose`,
        );
      }
      assert.ok(
        Math.abs(m.conditionNumber - ref[m.name]['cond_A_plus_0.01I']) <= 1e-6 * m.conditionNumber,
        `${m.name}: condition number`,
      );
    }
    // The well-conditioned family converges within 20 steps; the clustered one does not.
    const verdict = (name: string) => out.matrices.find((m: any) => m.name === name).verdict as string;
    assert.match(verdict('direct_randn_m49'), /^converged at iteration \d+ of 20$/);
    assert.match(verdict('clustered_m64'), /^not converged after 20 iterations: residual/);
  });

  test('a config: every SOFT stage and head of soft_tiny at 224, with the trace and thresholds', () => {
    const r = vitlens('pinv', tiny, '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(
      out.stages.map((s: any) => [s.stage, s.landmarks, s.heads.length]),
      [
        [1, 49, 2],
        [2, 49, 4],
        [3, 49, 10],
      ],
    );
    assert.equal(out.variant, 'A');
    for (const h of out.stages.flatMap((s: any) => s.heads)) {
      assert.equal(h.iterations.length, 21);
      assert.equal(h.iterations[0].k, 0);
      // Newton–Schulz squares the residual each step once it contracts: the trace must fall.
      assert.ok(h.iterations[6].residual < h.iterations[1].residual);
      const k3 = h.reaches['1e-3'].residual;
      assert.ok(k3 === null || h.iterations[k3].residual <= 1e-3);
      assert.ok(k3 === null || k3 === 0 || h.iterations[k3 - 1].residual > 1e-3);
    }
    assert.match(out.summary, /^(converged after \d+ of 20 in every stage and head|not converged in)/);
  });

  test('a bad config fails with file:line and nothing run', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-pinv-'));
    const f = path.join(dir, 'SOFT_bad.yaml');
    fs.writeFileSync(f, 'model: soft_tiny\nnewton_maxiter: -3\n');
    const r = vitlens('pinv', f);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /SOFT_bad\.yaml:2:\d+: error/);
  });
});

const tinyModel = specOf(fs.readFileSync(path.join(SOFT_CONFIGS, 'SOFT_Tiny.yaml'), 'utf8'));

/**
 * Bounds on any peak of live activations, read off the attention graph of a soft_tiny stage:
 * at least its largest activation, at most all activations added up (nothing ever freed), and
 * the analytic liveness peak. Weights, and what is computed from weights alone, are not activations.
 */
function activationBounds(stageIndex: number, attention: AttentionKind) {
  const stage = { ...tinyModel.stages[stageIndex - 1]!, attention };
  const grid = 224 / 4 / 2 ** (stageIndex - 1);
  const g = new Graph();
  const c = layerContext(stage, grid, 1);
  const y = attentionLayer(g, g.input('x', [1, c.tokens, stage.dim]), attentionPrefix(stage, 0), stage, tinyModel, c);
  const fromInput = new Set<number>();
  let largest = 0;
  let total = 0;
  for (const { node, out } of g.nodes) {
    if (node.op !== 'input' && !operandsOf(node).some((t) => fromInput.has(t.id))) continue;
    fromInput.add(out.id);
    if (node.op === 'reshape') continue; // a view of its input
    largest = Math.max(largest, numel(out.shape) * 4);
    total += numel(out.shape) * 4;
  }
  return { largest, total, analyticPeak: graphCost(g, [y]).peakActivationBytes };
}

/** MACs of SOFT attention written out from docs/MATHS.md §1.2–1.4 (B = 1), independent of the graph. */
function softAttentionMacs(N: number, D: number, h: number, m: number, r: number, k: number, iters: number): number {
  const dh = D / h;
  return (
    3 * N * D * D +
    h * m * dh * dh * r * r +
    h * N * m * dh +
    h * m * m * dh +
    iters * 2 * h * m ** 3 +
    h * (N * m * m + 2 * m * N * dh) +
    dh * h * N * k * k
  );
}

describe('vitlens bench', () => {
  test('stage 3 of SOFT_Tiny on ORT CPU and WebGPU: named devices, exact MACs, outputs equal to the reference', () => {
    const backends = noWebGpu ? 'ort-cpu' : 'ort-cpu,ort-webgpu';
    const r = vitlens(
      'bench',
      tiny,
      '--json',
      '--quiet',
      '--stage',
      '3',
      '--no-scaling',
      '--budget-ms',
      '60',
      '--backend',
      backends,
      '--attention',
      'soft,ufo,softmax',
      '--level',
      'attention',
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.model, 'soft_tiny');
    const cpu = out.runtimes.find((d: any) => d.id === 'ort-cpu');
    assert.match(cpu.runtime, /onnxruntime-node 1\.30\.0, CPU EP/);
    assert.equal(cpu.software, false);
    if (!noWebGpu) {
      const gpu = out.runtimes.find((d: any) => d.id === 'ort-webgpu');
      assert.ok(gpu, JSON.stringify(out.unavailable));
      assert.match(gpu.device, /software/);
      assert.equal(gpu.software, true);
      assert.ok(out.notes.some((n: string) => n.includes('not GPU performance')));
    }
    for (const c of out.cases) {
      assert.equal(c.status, 'ok', `${c.id}: ${c.message}`);
      assert.ok(c.timingMs.n >= 3 && c.timingMs.p10 <= c.timingMs.median && c.timingMs.median <= c.timingMs.p90);
      assert.ok(Math.abs(c.gflopsPerSecond - (2 * c.macs) / (c.timingMs.median * 1e6)) < 1e-9 * c.gflopsPerSecond);
      assert.equal(c.memory[0].kind, 'estimated');
      assert.ok(
        c.relErrorVsReference !== null && c.relErrorVsReference < 1e-5,
        `${c.id}: rel. error ${c.relErrorVsReference}`,
      );
    }
    const soft = out.cases.find((c: any) => c.attention === 'soft');
    assert.equal(soft.landmarks, 49);
    assert.equal(soft.macs, softAttentionMacs(196, 320, 10, 49, 2, 3, 20));
    const softmax = out.cases.find((c: any) => c.attention === 'softmax');
    // q, kv (2D), proj linears + QKᵀ and AV.
    assert.equal(softmax.macs, 196 * 320 * 320 * 4 + 2 * 196 * 196 * 320);
    const cpuSoftmax = out.cases.find((c: any) => c.attention === 'softmax' && c.runtime === 'ort-cpu');
    assert.ok(
      cpuSoftmax.memory.some((m: any) => m.kind === 'measured' && /ORT CPU arena/.test(m.label) && m.bytes > 0),
    );
    for (const c of out.cases.filter((x: any) => x.runtime === 'ort-webgpu')) {
      const live = c.memory.find((m: any) => m.label === WEBGPU_LIVE_TENSORS_LABEL);
      assert.ok(live && live.kind === 'measured', `${c.id}: no ORT WebGPU figure in ${JSON.stringify(c.memory)}`);
      const b = activationBounds(3, c.attention);
      assert.ok(
        live.bytes >= b.largest && live.bytes <= b.total,
        `${c.id}: ${live.bytes} B outside [${b.largest}, ${b.total}]`,
      );
      assert.ok(
        live.bytes >= b.analyticPeak / 2 && live.bytes <= 2 * b.analyticPeak,
        `${c.id}: ${live.bytes} B vs analytic activation peak ${b.analyticPeak}`,
      );
    }
    assert.ok(out.overhead.fraction > 0 && out.overhead.fraction < 1);
  });

  test('fixed-landmark scaling: memory exponent ≤ 1.15 for SOFT and UFO, ≈ 2 for softmax (analytic); oversize refused', () => {
    const r = vitlens(
      'bench',
      tiny,
      '--json',
      '--quiet',
      '--stage',
      '1',
      '--backend',
      'ort-cpu',
      '--attention',
      'soft,ufo,softmax',
      '--level',
      'attention',
      '--resolution',
      '64',
      '--budget-ms',
      '20',
      '--scaling-tokens',
      '1225,9604,19600,254016',
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const fit = (a: string) => out.scaling.find((s: any) => s.attention === a);
    assert.ok(fit('soft').memoryExponent <= 1.15, `SOFT memory exponent ${fit('soft').memoryExponent}`);
    assert.ok(fit('ufo').memoryExponent <= 1.15);
    assert.ok(
      Math.abs(fit('softmax').memoryExponent - 2) < 0.1,
      `softmax memory exponent ${fit('softmax').memoryExponent}`,
    );
    for (const s of out.scaling) assert.ok(Number.isFinite(s.timeExponent));
    assert.deepEqual(fit('soft').landmarks, 49);
    // ORT CPU runs UFO in 1 MiB token tiles (≥ 4096 tokens at D = 64): 9604 tokens is two, checked against the reference.
    assert.equal(out.runtimes[0].tokenTileBytes, 2 ** 20);
    assert.ok(
      out.notes.some((n: string) => n.startsWith('ort-cpu runs UFO in token tiles of 1 MiB')),
      out.notes.join('\n'),
    );
    const tiled = out.cases.find((c: any) => c.attention === 'ufo' && c.tokens === 9604);
    assert.equal(tiled.macs, 9604 * (4 * 64 * 64 + 2 * 32 * 32 * 2));
    assert.ok(
      tiled.relErrorVsReference !== null && tiled.relErrorVsReference < 1e-5,
      `UFO 9604 tokens tiled: rel. error ${tiled.relErrorVsReference}`,
    );
    // softmax at 254016 tokens needs 2·254016²·4 B ≈ 516 GB of scores: refused before allocation, with the estimate.
    const huge = out.cases.find((c: any) => c.attention === 'softmax' && c.tokens === 254016);
    assert.ok(huge.status === 'refused' || huge.status === 'skipped', huge.status);
    if (huge.status === 'refused') assert.match(huge.message, /estimated peak .* GiB exceeds/);
  });

  test(
    'tfjs-wasm runs a stage-3 case: the graph ORT CPU ran (same MACs), equal to the reference',
    { timeout: 60_000 },
    async () => {
      after(() => shutdownTfjs());
      const report = await probeDevices({ webgpu: false, nvidia: false });
      const r = await runBenchmark(
        {
          model: tinyModel,
          config: null,
          runtimes: ['ort-cpu', 'tfjs-wasm'],
          attentions: ['soft'],
          levels: ['attention'],
          stages: [3],
          scaling: false,
          budgetMs: 30,
        },
        report,
      );
      assert.deepEqual(r.unavailable, []);
      const [cpu, wasm] = ['ort-cpu', 'tfjs-wasm'].map((id) => r.cases.find((c) => c.runtime === id)!);
      assert.equal(wasm!.status, 'ok', wasm!.message ?? '');
      assert.match(r.runtimes.find((d) => d.id === 'tfjs-wasm')!.device, /^WebAssembly on /);
      assert.equal(wasm!.macs, cpu!.macs);
      assert.equal(wasm!.macs, softAttentionMacs(196, 320, 10, 49, 2, 3, 20));
      assert.ok(
        wasm!.relErrorVsReference !== null && wasm!.relErrorVsReference < 1e-4,
        `rel. error ${wasm!.relErrorVsReference}`,
      );
      assert.ok(
        wasm!.memory.some((m) => m.kind === 'measured' && /tf\.profile peakBytes/.test(m.label) && m.bytes > 0),
      );
    },
  );

  test('Theil–Sen exponent: exact on a power law, unmoved by one disturbed point that bends least squares', () => {
    const xs = [1225, 2401, 4900, 9604, 19600, 38416, 63504];
    const linear = xs.map((x) => 3e-4 * x);
    assert.ok(Math.abs(theilSenExponent(xs, linear) - 1) < 1e-12);
    // The largest point 1.6× slower, as when another process shares the CPU during it.
    const disturbed = linear.map((y, i) => (i === xs.length - 1 ? 1.6 * y : y));
    assert.ok(Math.abs(theilSenExponent(xs, disturbed) - 1) < 1e-12);
    assert.ok(fitPowerLaw(xs, disturbed).exponent > 1.05);
  });

  test('an unknown backend is a usage error', () => {
    const r = vitlens('bench', tiny, '--backend', 'cuda-magic');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--backend cuda-magic: expected one of/);
  });
});

describe('GPU memory sampling around a case (nvidia-smi)', () => {
  const hardwareWebGpu: RuntimeDescription = {
    id: 'ort-webgpu',
    runtime: 'onnxruntime-node 1.30.0, WebGPU EP',
    device: 'NVIDIA H100 80GB HBM3 (hardware, Vulkan)',
    software: false,
    maxBufferBytes: 2 ** 31,
    tokenTileBytes: null,
  };
  const gpus = [
    { index: 0, name: 'NVIDIA H100 80GB HBM3', memoryUsedMiB: 100, memoryTotalMiB: 81559, driverVersion: '550.54.15' },
    { index: 1, name: 'NVIDIA H100 80GB HBM3', memoryUsedMiB: 7, memoryTotalMiB: 81559, driverVersion: '550.54.15' },
  ];

  test('the sampler keeps the first reading as baseline and the maximum per GPU; the figure is the largest rise', async () => {
    // Readings as nvidia-smi would give them while a case allocates and frees: GPU 0 peaks at 900 MiB.
    const readings: number[][] = [
      [100, 7],
      [300, 7],
      [900, 8],
      [400, 7],
    ];
    let next = 0;
    const read = async (): Promise<GpuMemorySample> => {
      const usedMiB = readings[Math.min(next++, readings.length - 1)]!;
      return { available: true, at: Date.now(), usedMiB, totalMiB: [81559, 81559] };
    };
    const sampler = startGpuMemorySampler({ intervalMs: 5, read });
    while (next < readings.length) await new Promise((res) => setTimeout(res, 5));
    const peak = await sampler.stop();
    assert.deepEqual({ baseline: peak.baselineMiB, peak: peak.peakMiB }, { baseline: [100, 7], peak: [900, 8] });
    assert.ok(peak.samples >= readings.length, `${peak.samples} samples`);
    const figure = gpuMemoryFigure(peak, gpus);
    assert.equal(figure?.bytes, 800 * 2 ** 20);
    assert.equal(figure?.kind, 'measured');
    assert.match(
      figure?.label ?? '',
      /^nvidia-smi: rise of used memory on GPU 0 \(NVIDIA H100 80GB HBM3\) during the case/,
    );
  });

  test('no figure without a reading during the case, or when nvidia-smi failed', () => {
    assert.equal(gpuMemoryFigure({ available: true, baselineMiB: [100], peakMiB: [100], samples: 1 }, gpus), null);
    assert.equal(
      gpuMemoryFigure(
        { available: false, reason: 'nvidia-smi not found', baselineMiB: [], peakMiB: [], samples: 0 },
        gpus,
      ),
      null,
    );
  });

  test('sampled only for runtimes on an NVIDIA GPU: never on this machine, never for CPU or software adapters', async () => {
    let started = 0;
    const start = () => {
      started++;
      return { stop: async () => ({ available: false, reason: 'fake', baselineMiB: [], peakMiB: [], samples: 0 }) };
    };
    const here = await probeDevices({ webgpu: false, onnxruntime: false });
    // This machine's own report: with no NVIDIA GPU, no case spawns nvidia-smi.
    if (!here.nvidia.available)
      for (const d of [hardwareWebGpu, { ...hardwareWebGpu, id: 'tfjs-node-gpu' as const }])
        assert.equal(caseGpuSampler(d, here, start), null);
    const nvidiaAdapter = { vendor: 'nvidia', software: false } as DeviceReport['webgpu']['adapters'][number];
    const withGpu: DeviceReport = {
      ...here,
      nvidia: { available: true, gpus },
      webgpu: { available: true, adapters: [nvidiaAdapter] },
    };
    started = 0;
    assert.ok(caseGpuSampler(hardwareWebGpu, withGpu, start));
    assert.ok(caseGpuSampler({ ...hardwareWebGpu, id: 'tfjs-webgpu' }, withGpu, start));
    assert.equal(caseGpuSampler({ ...hardwareWebGpu, id: 'ort-cpu', software: false }, withGpu, start), null);
    assert.equal(caseGpuSampler({ ...hardwareWebGpu, software: true }, withGpu, start), null);
    assert.equal(
      caseGpuSampler(
        hardwareWebGpu,
        { ...withGpu, webgpu: { available: true, adapters: [{ ...nvidiaAdapter, vendor: 'amd' }] } },
        start,
      ),
      null,
    );
    assert.equal(started, 2);
  });
});

describe('worker isolation', () => {
  const model = tinyModel;

  test('a job runs in the worker and streams progress', async () => {
    const progress: string[] = [];
    const r = await runIsolated({ kind: 'pinv', model, resolution: 64 }, { onProgress: (m) => progress.push(m) });
    assert.equal(r.model, 'soft_tiny');
    assert.deepEqual(
      r.stages.map((s) => s.landmarks),
      [4, 4, 4],
    );
    assert.ok(progress.length >= 1);
  });

  test('a worker killed by a native crash (SIGSEGV) fails the job with a clear message; this process lives on', async () => {
    let pid = 0;
    const job = runIsolated(
      { kind: 'bench', model, config: null, runtimes: ['ort-cpu'], stages: [1], scaling: false, budgetMs: 5000 },
      {
        onSpawn: (p) => (pid = p),
        onProgress: () => process.kill(pid, 'SIGSEGV'),
      },
    );
    await assert.rejects(job, (e: unknown) => {
      assert.ok(e instanceof WorkerFailure);
      assert.equal(e.reason, 'crashed');
      assert.match(e.message, /the bench worker was killed by SIGSEGV before answering .*nothing else was affected/);
      return true;
    });
  });

  test('a worker that exhausts its V8 heap fails as out-of-memory; this process runs the next job', async () => {
    // VITLENS_WORKER_FAULT=heap (worker.ts's test hook) fills the heap with JS objects until V8 aborts.
    const job = runIsolated(
      { kind: 'pinv', model, resolution: 64 },
      { heapMb: 32, env: { VITLENS_WORKER_FAULT: 'heap' } },
    );
    await assert.rejects(job, (e: unknown) => {
      assert.ok(e instanceof WorkerFailure);
      assert.equal(e.reason, 'out-of-memory');
      assert.match(
        e.message,
        /^the pinv worker ran out of memory \(heap limit 32 MiB\) and was stopped; nothing else was affected\..*\(FATAL ERROR: .*JavaScript heap out of memory\)$/,
      );
      return true;
    });
    const r = await runIsolated({ kind: 'pinv', model, resolution: 64 });
    assert.deepEqual(
      r.stages.map((s) => s.landmarks),
      [4, 4, 4],
    );
  });

  test('cancel kills the worker and rejects as cancelled', async () => {
    const ac = new AbortController();
    const job = runIsolated(
      { kind: 'bench', model, config: null, runtimes: ['ort-cpu'], stages: [1], scaling: false, budgetMs: 5000 },
      { signal: ac.signal, onProgress: () => ac.abort() },
    );
    await assert.rejects(job, (e: unknown) => e instanceof WorkerFailure && e.reason === 'cancelled');
  });
});
