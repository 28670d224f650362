/**
 * A GPU that Vulkan cannot see gets the diagnosis, never llvmpipe figures under its name: simulated
 * probes (an H100 known from nvidia-smi, the kernel driver or torch; Vulkan offering llvmpipe or
 * nothing; the NVIDIA manifest absent, present, or overridden) through the diagnosis, the backend
 * ranking and the benchmark's notes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { DeviceReport, WebGpuAdapter } from '../protocol/devices';
import { diagnoseGpuVisibility } from '../server/runtimes/gpu-visibility';
import { pickBestBackend } from '../server/runtimes/ranking';

const LIMITS = { maxStorageBufferBindingSize: 2 ** 27, maxBufferSize: 2 ** 28 } as WebGpuAdapter['limits'];

const LLVMPIPE: WebGpuAdapter = {
  vendor: 'mesa',
  architecture: '',
  device: 'llvmpipe (LLVM 19.1.7, 256 bits)',
  displayName: null,
  description: 'Mesa 25.0.7',
  isFallbackAdapter: false,
  software: true,
  backend: 'Vulkan',
  requestedAs: ['high-performance'],
  limits: LIMITS,
  features: [],
};
const H100: WebGpuAdapter = {
  ...LLVMPIPE,
  vendor: 'nvidia',
  device: 'nvidia-h100-80gb-hbm3',
  description: 'NVIDIA',
  software: false,
};

type Parts = Pick<DeviceReport, 'nvidia' | 'pytorch' | 'webgpu' | 'host'>;

function machine(o: { smi?: boolean; torchCuda?: boolean; adapters: WebGpuAdapter[]; webgpuReason?: string }): Parts {
  return {
    host: { cpuModel: 'Test CPU', cores: 16, totalMemoryBytes: 2 ** 37, platform: 'linux', arch: 'x64', node: '20' },
    nvidia: o.smi
      ? {
          available: true,
          gpus: [
            {
              index: 0,
              name: 'NVIDIA H100 80GB HBM3',
              memoryUsedMiB: 0,
              memoryTotalMiB: 81559,
              driverVersion: '550.54',
            },
          ],
        }
      : { available: false, reason: 'nvidia-smi not found', gpus: [] },
    pytorch: {
      available: Boolean(o.torchCuda),
      python: null,
      torch: null,
      devices: o.torchCuda ? [{ kind: 'cuda', index: 0, name: 'NVIDIA H100 80GB HBM3', capability: '9.0' }] : [],
      cuda: { available: Boolean(o.torchCuda) },
      mps: { available: false },
      tried: [],
      libraryDirs: [],
    },
    webgpu: {
      available: o.adapters.length > 0,
      adapters: o.adapters,
      ...(o.webgpuReason ? { reason: o.webgpuReason } : {}),
    },
  };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-icd-'));
const emptyIcd = path.join(tmp, 'empty');
const nvidiaIcd = path.join(tmp, 'with-nvidia');
fs.mkdirSync(emptyIcd);
fs.mkdirSync(nvidiaIcd);
fs.writeFileSync(path.join(nvidiaIcd, 'nvidia_icd.json'), '{"ICD":{"library_path":"libGLX_nvidia.so.0"}}');
const noProc = path.join(tmp, 'no-such-proc-file');

describe('does WebGPU reach the GPU that is here?', () => {
  test('no GPU known (no nvidia-smi, no driver, no CUDA torch): nothing to say, llvmpipe is just a software adapter', () => {
    assert.equal(
      diagnoseGpuVisibility(machine({ adapters: [LLVMPIPE] }), { nvidiaProcFile: noProc, icdDirs: [emptyIcd] }),
      null,
    );
  });

  test('an H100 in nvidia-smi, only llvmpipe in Vulkan, no manifest: the diagnosis names both and the container fix', () => {
    const v = diagnoseGpuVisibility(machine({ smi: true, adapters: [LLVMPIPE] }), {
      nvidiaProcFile: noProc,
      icdDirs: [emptyIcd],
      env: {},
    })!;
    assert.equal(v.webgpuReachesIt, false);
    assert.deepEqual(v.gpuKnown, ['nvidia-smi lists GPU 0: NVIDIA H100 80GB HBM3']);
    assert.match(
      v.diagnosis!,
      /NVIDIA H100 80GB HBM3.*only a software adapter \(llvmpipe \(LLVM 19\.1\.7, 256 bits\)\)/,
    );
    assert.match(v.diagnosis!, /measure the CPU, not this GPU/);
    assert.match(v.fixes[0]!, /no NVIDIA Vulkan driver manifest \(nvidia_icd\.json\) in .*empty/);
    assert.match(v.fixes[0]!, /NVIDIA_DRIVER_CAPABILITIES including "graphics"/);
    assert.match(v.fixes[0]!, /VK_DRIVER_FILES/);
  });

  test('the manifest is there but not loaded: point VK_DRIVER_FILES at it; a foreign VK_DRIVER_FILES is named', () => {
    const v = diagnoseGpuVisibility(machine({ torchCuda: true, adapters: [LLVMPIPE] }), {
      nvidiaProcFile: noProc,
      icdDirs: [nvidiaIcd],
      env: { VK_DRIVER_FILES: '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json' },
    })!;
    assert.deepEqual(v.gpuKnown, ['torch sees cuda:0: NVIDIA H100 80GB HBM3']);
    assert.match(
      v.fixes[0]!,
      new RegExp(`VK_DRIVER_FILES=${path.join(nvidiaIcd, 'nvidia_icd.json').replace(/[/.]/g, '\\$&')}`),
    );
    assert.ok(v.fixes.some((f) => /lvp_icd\.x86_64\.json, which is not the NVIDIA driver/.test(f)));
  });

  test('no adapter at all and no Vulkan loader: the kernel driver is evidence, and libvulkan1 is a fix', () => {
    const proc = path.join(tmp, 'version');
    fs.writeFileSync(proc, 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15\n');
    const v = diagnoseGpuVisibility(
      machine({ adapters: [], webgpuReason: 'no adapter (libvulkan.so.1: cannot open shared object file)' }),
      { nvidiaProcFile: proc, icdDirs: [emptyIcd], env: {} },
    )!;
    assert.match(v.gpuKnown[0]!, /NVIDIA kernel driver is loaded .*550\.54\.15/);
    assert.match(v.diagnosis!, /Vulkan offers no adapter at all/);
    assert.ok(v.fixes.includes('install the Vulkan loader (Debian/Ubuntu: libvulkan1)'));
  });

  test('the NVIDIA adapter is there: it reaches the GPU, no diagnosis', () => {
    const v = diagnoseGpuVisibility(machine({ smi: true, adapters: [H100, LLVMPIPE] }), {
      nvidiaProcFile: noProc,
      icdDirs: [nvidiaIcd],
    })!;
    assert.equal(v.webgpuReachesIt, true);
    assert.equal(v.diagnosis, null);
  });

  test('the ranking never offers llvmpipe as the GPU: its reason carries the diagnosis', () => {
    const parts = machine({ smi: true, adapters: [LLVMPIPE] });
    const report: DeviceReport = {
      schemaVersion: 1,
      probedAt: '2026-12-06T00:00:00.000Z',
      probeMs: 1,
      ...parts,
      onnxruntime: {
        available: true,
        version: '1.30.0',
        backends: [
          { name: 'cpu', bundled: true, installed: true },
          { name: 'webgpu', bundled: true, installed: true },
        ],
      },
      gpuVisibility: diagnoseGpuVisibility(parts, { nvidiaProcFile: noProc, icdDirs: [emptyIcd], env: {} }),
      vulkanEnv: { VK_ICD_FILENAMES: null, VK_DRIVER_FILES: null, XDG_RUNTIME_DIR: '/tmp' },
    };
    const ranked = pickBestBackend(report);
    assert.equal(ranked[0]!.backend, 'ort-cpu', 'ORT CPU ranks first, not the software adapter');
    const soft = ranked.find((c) => c.backend === 'ort-webgpu')!;
    assert.match(
      soft.reason,
      /NOT this machine's GPU: A GPU is here \(nvidia-smi lists GPU 0: NVIDIA H100 80GB HBM3\)/,
    );
  });
});
