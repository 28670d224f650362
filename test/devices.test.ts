/**
 * server/runtimes/probe.ts, nvidia.ts, ranking.ts: the real probe on this machine (lavapipe, ORT 1.30 cpu+webgpu,
 * no nvidia-smi), nvidia-smi handling through a fake executable, that a probing script
 * exits on its own (Dawn must not keep node alive), and pickBestBackend on hand-made reports.
 * VITLENS_NO_WEBGPU=1 skips the adapter assertions where there is no Vulkan at all.
 */
import assert from 'node:assert/strict';
import { defaultRuntimes, pickBestBackend } from '../server/runtimes/ranking';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import type { DeviceReport, WebGpuAdapter } from '../protocol/devices';
import { adapterLabel } from '../server/runtimes/labels';
import { gpuMemoryUsed, parseNvidiaSmi, probeNvidia, startGpuMemorySampler } from '../server/runtimes/nvidia';
import { probeDevices } from '../server/runtimes/probe';

const NO_WEBGPU = process.env.VITLENS_NO_WEBGPU === '1' ? 'VITLENS_NO_WEBGPU=1: no Vulkan adapter to probe' : false;
const ROOT = path.resolve(__dirname, '..');
const LAVAPIPE_ICD = ['/usr/share/vulkan/icd.d/lvp_icd.json', '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json'].some((f) =>
  fs.existsSync(f),
);

describe('probeDevices on this machine', () => {
  let report: DeviceReport;
  before(async () => {
    report = await probeDevices();
  });

  test('is plain JSON (round-trips unchanged)', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(report)), report);
    assert.equal(report.schemaVersion, 1);
  });

  test('host', () => {
    assert.equal(report.host.cores, os.availableParallelism());
    assert.equal(report.host.node, process.versions.node);
    assert.ok(report.host.totalMemoryBytes > 0);
    assert.ok(report.host.cpuModel.length > 0);
  });

  test('onnxruntime-node 1.30: cpu and webgpu bundled, cuda not bundled with a reason', () => {
    const ort = report.onnxruntime;
    assert.ok(ort.available, ort.reason);
    assert.match(ort.version ?? '', /^\d+\.\d+\.\d+/);
    const by = new Map(ort.backends.map((b) => [b.name, b]));
    assert.equal(by.get('cpu')?.bundled, true);
    assert.equal(by.get('webgpu')?.bundled, true);
    const cuda = by.get('cuda');
    assert.ok(cuda, 'ORT lists cuda');
    assert.equal(cuda.bundled, false);
    if (!cuda.installed) assert.match(cuda.reason ?? '', /nuget/);
  });

  test(
    'nvidia-smi absent here → available:false with a reason',
    { skip: fs.existsSync('/usr/bin/nvidia-smi') ? 'nvidia-smi installed on this machine' : false },
    () => {
      assert.equal(report.nvidia.available, false);
      assert.equal(report.nvidia.reason, 'nvidia-smi not found');
      assert.deepEqual(report.nvidia.gpus, []);
    },
  );

  test(
    'WebGPU: lavapipe is listed as software with the 128 MiB binding limit',
    { skip: NO_WEBGPU || (LAVAPIPE_ICD ? false : 'no lavapipe ICD installed') },
    () => {
      assert.ok(report.webgpu.available, report.webgpu.reason);
      const sw = report.webgpu.adapters.filter((a) => a.software);
      assert.ok(sw.length >= 1, `software adapters: ${JSON.stringify(report.webgpu.adapters.map(adapterLabel))}`);
      const lvp = sw.find((a) => /llvmpipe/i.test(a.device));
      assert.ok(lvp, 'an llvmpipe adapter');
      assert.equal(lvp.limits.maxStorageBufferBindingSize, 134217728);
      assert.equal(lvp.limits.maxStorageBuffersPerShaderStage, 16);
      assert.ok(lvp.features.includes('timestamp-query'));
      assert.ok(lvp.requestedAs.includes('fallback'));
      assert.match(adapterLabel(lvp), /^llvmpipe \(Mesa \d+\.\d+(\.\d+)?, software — CPU emulating a GPU\)$/);
      // Vulkan loader warnings are avoided by giving it a runtime dir.
      assert.ok(process.env.XDG_RUNTIME_DIR);
    },
  );

  test(
    'pickBestBackend: no hardware adapter here → ort-cpu first, ort-webgpu still listed',
    { skip: NO_WEBGPU },
    () => {
      if (report.webgpu.adapters.some((a) => !a.software)) return; // a machine with a real GPU: covered by the hand-made cases
      const c = pickBestBackend(report);
      assert.equal(c[0]?.backend, 'ort-cpu');
      assert.equal(c[0]?.status, 'preferred');
      assert.ok(c.some((x) => x.backend === 'ort-webgpu' && x.status === 'runnable'));
    },
  );
});

describe('VITLENS_NO_WEBGPU / webgpu:false', () => {
  test('webgpu:false skips Dawn and says so', async () => {
    const r = await probeDevices({ webgpu: false, onnxruntime: false, nvidia: false });
    assert.equal(r.webgpu.available, false);
    assert.match(r.webgpu.reason ?? '', /not probed|VITLENS_NO_WEBGPU/);
    const c = pickBestBackend({
      ...r,
      onnxruntime: {
        available: true,
        version: '1.30.0',
        backends: [
          { name: 'cpu', bundled: true, installed: true },
          { name: 'webgpu', bundled: true, installed: true },
        ],
      },
    });
    assert.equal(c[0]?.backend, 'ort-cpu');
    assert.equal(c.find((x) => x.backend === 'ort-webgpu')?.status, 'unknown');
  });
});

test(
  'a script that calls probeDevices() and returns exits by itself',
  { skip: NO_WEBGPU, timeout: 90_000 },
  async () => {
    // No process.exit(), no cleanup call: returning must be enough.
    const script = `require('./server/runtimes/probe').probeDevices().then((r) => console.log('adapters=' + r.webgpu.adapters.length));`;
    const started = Date.now();
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        const child = execFile(
          process.execPath,
          ['--import', 'tsx', '-e', script],
          { cwd: ROOT, timeout: 60_000, killSignal: 'SIGKILL' },
          (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
        child.stdin?.end();
      },
    );
    assert.equal(code, 0, `child did not exit cleanly in ${Date.now() - started} ms: ${stderr}`);
    assert.match(stdout, /adapters=\d+/);
  },
);

describe('nvidia-smi handling (fake executable)', () => {
  let dir: string;
  let fake: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-smi-'));
    fake = path.join(dir, 'nvidia-smi');
    // Memory rises by 1000 MiB per call so the sampler has a peak to find.
    const counter = path.join(dir, 'n');
    fs.writeFileSync(
      fake,
      `#!/bin/sh\nn=$(cat ${counter} 2>/dev/null || echo 0); echo $((n+1)) > ${counter}\necho "0, NVIDIA H100 80GB HBM3, $((1 + n*1000)), 81559, 550.54.15"\necho "1, NVIDIA H100 80GB HBM3, 7, 81559, 550.54.15"\n`,
      { mode: 0o755 },
    );
  });

  test('parseNvidiaSmi', () => {
    assert.deepEqual(parseNvidiaSmi('0, NVIDIA H100 80GB HBM3, 1, 81559, 550.54.15\n\n'), [
      { index: 0, name: 'NVIDIA H100 80GB HBM3', memoryUsedMiB: 1, memoryTotalMiB: 81559, driverVersion: '550.54.15' },
    ]);
  });

  test('ENOENT → nvidia-smi not found', async () => {
    const r = await probeNvidia({ nvidiaSmi: path.join(os.tmpdir(), 'definitely-not-here', 'nvidia-smi') });
    assert.deepEqual(r, { available: false, reason: 'nvidia-smi not found', gpus: [] });
    const m = await gpuMemoryUsed({ nvidiaSmi: '/nonexistent/nvidia-smi' });
    assert.deepEqual(m, { available: false, reason: 'nvidia-smi not found' });
  });

  test('a failing nvidia-smi reports its message', async () => {
    const bad = path.join(dir, 'bad-smi');
    fs.writeFileSync(
      bad,
      '#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."\nexit 9\n',
      { mode: 0o755 },
    );
    const r = await probeNvidia({ nvidiaSmi: bad });
    assert.equal(r.available, false);
    assert.match(r.reason ?? '', /exit 9.*couldn't communicate/);
  });

  test('probe, one reading, and a sampler peak', async () => {
    const r = await probeNvidia({ nvidiaSmi: fake });
    assert.equal(r.available, true);
    assert.equal(r.gpus.length, 2);
    const s = await gpuMemoryUsed({ nvidiaSmi: fake });
    assert.ok(s.available);
    assert.deepEqual(s.totalMiB, [81559, 81559]);
    const sampler = startGpuMemorySampler({ nvidiaSmi: fake, intervalMs: 10 });
    await new Promise((res) => setTimeout(res, 200));
    const peak = await sampler.stop();
    assert.ok(peak.available, peak.reason);
    assert.ok(peak.samples >= 2, `samples ${peak.samples}`);
    assert.ok(peak.peakMiB[0]! > peak.baselineMiB[0]!, `peak ${peak.peakMiB} vs baseline ${peak.baselineMiB}`);
    assert.equal(peak.peakMiB[1], 7);
  });

  test('sampler without nvidia-smi', async () => {
    const peak = await startGpuMemorySampler({ nvidiaSmi: '/nonexistent/nvidia-smi' }).stop();
    assert.equal(peak.available, false);
    assert.equal(peak.reason, 'nvidia-smi not found');
  });
});

// ---------------------------------------------------------------------------------------------
// pickBestBackend / adapterLabel on hand-made reports
// ---------------------------------------------------------------------------------------------

const LIMITS = {
  maxBufferSize: 2 ** 32 - 1,
  maxComputeWorkgroupStorageSize: 32768,
  maxStorageBuffersPerShaderStage: 16,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupsPerDimension: 65535,
};

const LAVAPIPE: WebGpuAdapter = {
  vendor: 'mesa',
  architecture: 'software',
  device: 'llvmpipe-llvm-15-0-6-256-bits-',
  description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1',
  isFallbackAdapter: true,
  software: true,
  backend: 'Vulkan',
  displayName: null,
  requestedAs: ['fallback'],
  limits: { ...LIMITS, maxStorageBufferBindingSize: 134217728 },
  features: ['timestamp-query'],
};

const H100: WebGpuAdapter = {
  vendor: 'nvidia',
  architecture: 'hopper',
  device: 'nvidia-h100-80gb-hbm3',
  description: 'NVIDIA: 550.54.15 550.54.15.0',
  isFallbackAdapter: false,
  software: false,
  backend: 'Vulkan',
  displayName: 'NVIDIA H100 80GB HBM3',
  requestedAs: ['high-performance', 'low-power'],
  limits: { ...LIMITS, maxStorageBufferBindingSize: 2 ** 32 - 4 },
  features: ['shader-f16', 'timestamp-query'],
};

function handMade(adapters: WebGpuAdapter[], nvidia = false): DeviceReport {
  return {
    schemaVersion: 1,
    probedAt: '2026-01-01T00:00:00.000Z',
    probeMs: 1,
    host: {
      cpuModel: 'Test CPU',
      cores: 16,
      totalMemoryBytes: 2 ** 37,
      platform: 'linux',
      arch: 'x64',
      node: '20.20.2',
    },
    onnxruntime: {
      available: true,
      version: '1.30.0',
      backends: [
        { name: 'cpu', bundled: true, installed: true },
        { name: 'webgpu', bundled: true, installed: true },
        { name: 'cuda', bundled: false, installed: false, reason: 'not bundled: nuget download at install' },
      ],
    },
    webgpu: { available: adapters.length > 0, adapters },
    nvidia: nvidia
      ? {
          available: true,
          gpus: [
            {
              index: 0,
              name: 'NVIDIA H100 80GB HBM3',
              memoryUsedMiB: 1,
              memoryTotalMiB: 81559,
              driverVersion: '550.54.15',
            },
          ],
        }
      : { available: false, reason: 'nvidia-smi not found', gpus: [] },
    pytorch: {
      available: false,
      reason: 'not probed (pytorch: false)',
      python: null,
      torch: null,
      devices: [],
      cuda: { available: false },
      mps: { available: false },
      tried: [],
      libraryDirs: [],
    },
    gpuVisibility: null,
    vulkanEnv: { VK_ICD_FILENAMES: null, VK_DRIVER_FILES: null, XDG_RUNTIME_DIR: '/tmp' },
  };
}

describe('pickBestBackend (hand-made reports)', () => {
  test('defaultRuntimes follows the same ranking, runnable backends only, each once', () => {
    assert.deepEqual(defaultRuntimes(handMade([H100], true)), ['ort-webgpu', 'ort-cpu']);
    assert.deepEqual(defaultRuntimes(handMade([LAVAPIPE])), ['ort-cpu', 'ort-webgpu']);
    assert.deepEqual(defaultRuntimes(handMade([LAVAPIPE, H100], true)), ['ort-webgpu', 'ort-cpu']);
    assert.deepEqual(defaultRuntimes(handMade([])), ['ort-cpu']);
  });

  test('hardware NVIDIA adapter → ort-webgpu first, then ort-cpu', () => {
    const c = pickBestBackend(handMade([H100], true));
    assert.deepEqual(
      c.map((x) => [x.backend, x.status]),
      [
        ['ort-webgpu', 'preferred'],
        ['ort-cpu', 'runnable'],
        ['ort-cuda', 'unavailable'],
      ],
    );
    assert.equal(c[0]?.adapter, 'NVIDIA H100 80GB HBM3 (hardware, Vulkan)');
    assert.match(c[0]?.reason ?? '', /4096 MiB/);
  });

  test('software only → ort-cpu first, ort-webgpu on lavapipe after it (runnable, for correctness)', () => {
    const c = pickBestBackend(handMade([LAVAPIPE]));
    assert.deepEqual(
      c.map((x) => [x.backend, x.status]),
      [
        ['ort-cpu', 'preferred'],
        ['ort-webgpu', 'runnable'],
        ['ort-cuda', 'unavailable'],
      ],
    );
    assert.match(c[1]?.reason ?? '', /slower than ORT CPU/);
    assert.match(c[2]?.reason ?? '', /nuget/);
  });

  test('NVIDIA + lavapipe → hardware first, cpu, lavapipe; warns that ORT cannot choose the adapter', () => {
    const c = pickBestBackend(handMade([LAVAPIPE, H100], true));
    assert.deepEqual(
      c.map((x) => [x.backend, x.adapter ?? null]),
      [
        ['ort-webgpu', 'NVIDIA H100 80GB HBM3 (hardware, Vulkan)'],
        ['ort-cpu', null],
        ['ort-webgpu', 'llvmpipe (Mesa 25.0.7, software — CPU emulating a GPU)'],
        ['ort-cuda', null],
      ],
    );
    assert.match(c[0]?.reason ?? '', /VK_ICD_FILENAMES/);
  });

  test('no adapter at all → ort-cpu, and ort-webgpu unavailable', () => {
    const r = handMade([]);
    r.webgpu.reason = 'requestAdapter() returned null for every request';
    const c = pickBestBackend(r);
    assert.equal(c[0]?.backend, 'ort-cpu');
    assert.equal(c.find((x) => x.backend === 'ort-webgpu')?.status, 'unavailable');
  });

  test('onnxruntime-node missing → only an unavailable entry with its reason', () => {
    const r = handMade([H100]);
    r.onnxruntime = {
      available: false,
      version: null,
      backends: [],
      reason: 'onnxruntime-node could not be loaded: x',
    };
    assert.deepEqual(pickBestBackend(r), [
      {
        backend: 'ort-cpu',
        executionProvider: 'cpu',
        status: 'unavailable',
        reason: 'onnxruntime-node could not be loaded: x',
      },
    ]);
  });
});

describe('adapterLabel', () => {
  test('lavapipe and NVIDIA', () => {
    assert.equal(adapterLabel(LAVAPIPE), 'llvmpipe (Mesa 25.0.7, software — CPU emulating a GPU)');
    assert.equal(adapterLabel(H100), 'NVIDIA H100 80GB HBM3 (hardware, Vulkan)');
    assert.equal(adapterLabel({ ...H100, displayName: null }), 'nvidia-h100-80gb-hbm3 (hardware, Vulkan)');
  });

  test('SwiftShader', () => {
    const ss: WebGpuAdapter = {
      ...LAVAPIPE,
      vendor: 'google',
      architecture: '',
      device: 'swiftshader-device-subzero-',
      description: 'SwiftShader driver: SwiftShader 5.0.0',
    };
    assert.equal(adapterLabel(ss), 'SwiftShader driver (software — CPU emulating a GPU)');
  });
});
