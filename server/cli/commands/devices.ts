/** `vitlens devices`: the host, the runtimes this machine can load and the devices they see. */
import { parseArgs } from 'node:util';
import type { DeviceReport, PyTorchInfo } from '../../../protocol/devices';
import { formatBytes, REPORT_BYTES, type BytesFormat } from '../../../protocol/format';
import { adapterLabel } from '../../runtimes/labels';
import { probeDevices } from '../../runtimes/probe';
import type { Command, Out } from '../args';

const USAGE = '  vitlens devices [--python PATH] [--json]';

/** An adapter limit Dawn does not report is NaN (dawn.ts): say so, as the ranking does. */
const LIMIT_BYTES: BytesFormat = { ...REPORT_BYTES, missing: 'unknown' };

/** The user's PyTorch: which Python, which torch, what it runs on; or why there is none. */
function pytorchLines(p: PyTorchInfo): string[] {
  if (!p.available || !p.python || !p.torch) return [`PyTorch: none (${p.reason ?? 'not found'})`];
  const build = p.torch.hip ? `ROCm/HIP ${p.torch.hip}` : p.torch.cuda ? `CUDA ${p.torch.cuda}` : 'CPU-only build';
  const lines = [
    `PyTorch ${p.torch.version} (${build}) in Python ${p.python.version}: ${p.python.executable} (${p.python.source})`,
  ];
  for (const d of p.devices) {
    const detail =
      d.kind === 'cpu'
        ? `${d.threads ?? '?'} intra-op threads by default`
        : [
            d.capability && `compute capability ${d.capability}`,
            d.memoryBytes && formatBytes(d.memoryBytes, REPORT_BYTES),
          ]
            .filter(Boolean)
            .join(', ');
    lines.push(
      `  torch device ${d.kind}${d.kind === 'cpu' ? '' : `:${d.index}`}: ${d.kind === 'cpu' ? 'CPU' : d.name}${detail ? ` — ${detail}` : ''}`,
    );
  }
  if (!p.cuda.available && p.cuda.reason) lines.push(`  no CUDA/ROCm device: ${p.cuda.reason}`);
  const c = p.torch.compile;
  if (!c.available) lines.push(`  torch.compile: unavailable — ${c.reason ?? 'unknown'}`);
  else
    for (const [kind, s] of [
      ['cpu', c.cpu],
      ['cuda', c.cuda],
    ] as const)
      lines.push(
        `  torch.compile on ${kind}: ${s.available ? `available (torch-${kind}-compiled)` : `unavailable — ${s.reason}`}`,
      );
  return lines;
}

/** onnxruntime's CUDA EP: installed or not, and each library it needs, where it was found. */
function ortCudaLines(r: DeviceReport): string[] {
  const cuda = r.onnxruntime.cuda;
  if (!cuda) return [];
  const lines = [
    `  CUDA EP (ort-cuda): ${cuda.usable ? 'usable' : 'unusable'}${cuda.reason ? ` — ${cuda.reason}` : ''}`,
  ];
  // The library list matters where the EP is installed or a GPU is here; elsewhere it would be six "missing" lines.
  if (cuda.providerLibrary || r.nvidia.available || r.pytorch.cuda.available) {
    if (cuda.providerLibrary) lines.push(`    provider: ${cuda.providerLibrary}`);
    for (const l of cuda.libraries) lines.push(`    ${l.soname}: ${l.path ? `${l.path} (${l.via})` : 'missing'}`);
  }
  return lines;
}

function devicesText(r: DeviceReport): string {
  const out = [
    `Host: ${r.host.cpuModel}, ${r.host.cores} threads, ${formatBytes(r.host.totalMemoryBytes, REPORT_BYTES)} RAM, node ${r.host.node}`,
  ];
  out.push(
    `onnxruntime-node ${r.onnxruntime.version ?? '(not loadable)'}: ${r.onnxruntime.backends.map((b) => `${b.name}${b.bundled ? '' : ' (not bundled)'}`).join(', ') || r.onnxruntime.reason}`,
  );
  out.push(...ortCudaLines(r));
  if (r.webgpu.adapters.length === 0) out.push(`WebGPU: no adapter (${r.webgpu.reason ?? 'none found'})`);
  for (const a of r.webgpu.adapters)
    out.push(
      `WebGPU adapter: ${adapterLabel(a)} — maxStorageBufferBindingSize ${formatBytes(a.limits.maxStorageBufferBindingSize, LIMIT_BYTES)}, maxBufferSize ${formatBytes(a.limits.maxBufferSize, LIMIT_BYTES)}`,
    );
  if (r.nvidia.available)
    for (const g of r.nvidia.gpus)
      out.push(
        `NVIDIA GPU ${g.index}: ${g.name}, ${g.memoryUsedMiB}/${g.memoryTotalMiB} MiB used, driver ${g.driverVersion}`,
      );
  else out.push(`NVIDIA: ${r.nvidia.reason ?? 'none'}`);
  out.push(...pytorchLines(r.pytorch));
  const v = r.gpuVisibility;
  if (v && !v.webgpuReachesIt) out.push(`WARNING: ${v.diagnosis}`, ...v.fixes.map((f) => `  - ${f}`));
  return out.join('\n');
}

async function devicesCommand(args: string[], stdout: Out): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, python: { type: 'string' } } });
  const r = await probeDevices({ pytorch: { python: values.python ?? null } });
  const { probeTfjsBackends } = await import('../../runtimes/tfjs/load');
  const tfjs = await probeTfjsBackends(r);
  if (values.json) stdout(JSON.stringify({ ...r, tfjs }, null, 2));
  else {
    stdout(devicesText(r));
    for (const t of tfjs) stdout(`TF.js ${t.name}: ${t.available ? 'available' : `unavailable — ${t.reason}`}`);
  }
  return 0;
}

export const devices: Command = { name: 'devices', usage: USAGE, run: devicesCommand };
