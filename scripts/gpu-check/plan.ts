/**
 * The GPU check's decisions, kept pure so a test can hold them (test/gpu-check.test.ts): which
 * runtimes to run on the machine at hand, read from what the packed CLI says it has (`vitlens
 * devices --json` and the runtime ids its `--backend` accepts) rather than from a list written
 * here, since the CLI that travels may be newer or older than this file; how much time each
 * benchmark gets; how the per-runtime benchmark reports merge into one; the summary's text; and
 * whether the bundle fits what the device machine takes. scripts/gpu-check/check.ts does the file
 * work around these; run.sh drives the steps.
 */
import type { DeviceReport, WebGpuAdapter } from '../../protocol/devices';
import type { InferReport } from '../../protocol/infer';
import type { BenchCase, BenchReport } from '../../protocol/results';
import { adapterLabel } from '../../server/runtimes/labels';

// ---------------------------------------------------------------------------------------
// Which runtimes

/**
 * The part of `vitlens devices --json` the choice reads. Every field is optional: the JSON comes
 * from the packed CLI, which may predate a field (the CUDA EP's `cuda` block came with ort-cuda).
 */
export interface DevicesView {
  host?: Partial<DeviceReport['host']>;
  onnxruntime?: {
    available?: boolean;
    version?: string | null;
    reason?: string;
    backends?: { name: string; bundled?: boolean; installed?: boolean; reason?: string }[];
    cuda?: { usable?: boolean; reason?: string };
  };
  webgpu?: { available?: boolean; reason?: string; adapters?: WebGpuAdapter[] };
  nvidia?: { available?: boolean; reason?: string; gpus?: { index: number; name: string; driverVersion?: string }[] };
  pytorch?: {
    available?: boolean;
    reason?: string;
    python?: { executable: string; version: string } | null;
    torch?: { version: string; cuda: string | null; hip?: string | null } | null;
    devices?: { kind: string; index: number; name: string }[];
    cuda?: { available?: boolean; reason?: string };
  };
  gpuVisibility?: { webgpuReachesIt?: boolean; diagnosis?: string | null } | null;
}

export interface RuntimeChoice {
  id: string;
  run: boolean;
  /** Why it runs (on what) or why not: the summary prints it as it is. */
  why: string;
}

/** The order the check runs them in: the GPU figures first, so a short budget still gets them; ORT CPU last. */
export const CHECK_ORDER = ['ort-webgpu', 'torch-cuda', 'ort-cuda', 'torch-cpu', 'ort-cpu'] as const;

/**
 * The runtime ids a CLI accepts, from the message its `--backend` prints for an unknown id
 * ("--backend ?: expected one of ort-cpu, ort-webgpu, …."); null when the text has none.
 */
export function acceptedRuntimes(usageText: string): string[] | null {
  const m = /expected one of ([a-z0-9, -]+)\./i.exec(usageText);
  if (!m) return null;
  const ids = m[1]!
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return ids.length ? ids : null;
}

/** Whether this machine is known to have a GPU (nvidia-smi, torch, or the CLI's own visibility check). */
function gpuKnown(d: DevicesView): boolean {
  return Boolean(d.nvidia?.available || d.pytorch?.cuda?.available || d.gpuVisibility);
}

/**
 * Which runtimes the check benchmarks and infers on, in CHECK_ORDER, each with its reason, then
 * every other id the CLI accepts, marked as not run. ORT WebGPU runs on a hardware adapter; on a
 * software one (lavapipe) only where no GPU is known (the dry run on a machine without one):
 * on a GPU machine lavapipe's figures say nothing and would take minutes. PyTorch runs on CUDA,
 * or on its CPU where it has no CUDA device (the peer either way). `also` adds ids the lead asks
 * for (say torch-cuda-compiled), run after the others when the CLI accepts them.
 */
export function chooseRuntimes(d: DevicesView, accepted: string[], also: string[] = []): RuntimeChoice[] {
  const has = (id: string) => accepted.includes(id);
  const out: RuntimeChoice[] = [];
  const ort = d.onnxruntime;
  const ep = (name: string) => ort?.backends?.find((b) => b.name === name);

  // ORT WebGPU
  if (has('ort-webgpu')) {
    const adapters = d.webgpu?.adapters ?? [];
    const hardware = adapters.filter((a) => !a.software);
    const software = adapters.filter((a) => a.software);
    if (!ort?.available)
      out.push({
        id: 'ort-webgpu',
        run: false,
        why: `onnxruntime-node not loadable: ${ort?.reason ?? 'no answer from vitlens devices'}`,
      });
    else if (ep('webgpu') && !ep('webgpu')!.bundled)
      out.push({ id: 'ort-webgpu', run: false, why: `no WebGPU EP: ${ep('webgpu')!.reason ?? 'not bundled'}` });
    else if (hardware.length)
      out.push({ id: 'ort-webgpu', run: true, why: `on ${hardware.map(adapterLabel).join(' / ')}` });
    else if (software.length && !gpuKnown(d))
      out.push({
        id: 'ort-webgpu',
        run: true,
        why: `on ${software.map(adapterLabel).join(' / ')}: no GPU here, so only a correctness run`,
      });
    else if (software.length)
      out.push({
        id: 'ort-webgpu',
        run: false,
        why: `WebGPU reaches only ${software.map(adapterLabel).join(' / ')}, not this machine's GPU${d.gpuVisibility?.diagnosis ? `: ${d.gpuVisibility.diagnosis}` : ''}`,
      });
    else
      out.push({
        id: 'ort-webgpu',
        run: false,
        why: `no WebGPU adapter: ${d.webgpu?.reason ?? 'none found'} (is the Vulkan loader libvulkan.so.1 there, and an NVIDIA ICD manifest?)`,
      });
  }

  // PyTorch: CUDA, else its CPU.
  const torch = d.pytorch;
  const kinds = new Set((torch?.devices ?? []).map((x) => x.kind));
  const torchWhere = torch?.python
    ? `PyTorch ${torch.torch?.version ?? '?'} in ${torch.python.executable} (Python ${torch.python.version})`
    : 'PyTorch';
  const cudaName = torch?.devices?.find((x) => x.kind === 'cuda')?.name;
  if (has('torch-cuda')) {
    if (torch?.available && kinds.has('cuda'))
      out.push({ id: 'torch-cuda', run: true, why: `${torchWhere} on cuda:0 (${cudaName ?? 'GPU'})` });
    else
      out.push({
        id: 'torch-cuda',
        run: false,
        why: torch?.available
          ? `torch sees no CUDA device: ${torch.cuda?.reason ?? 'unknown'}`
          : `no PyTorch: ${torch?.reason ?? 'not found'}`,
      });
  }
  const torchCudaRuns = out.some((c) => c.id === 'torch-cuda' && c.run);

  // ORT's CUDA EP: only where the CLI has it and devices calls it usable.
  if (has('ort-cuda')) {
    const cuda = ort?.cuda;
    if (cuda?.usable && gpuKnown(d)) out.push({ id: 'ort-cuda', run: true, why: 'CUDA EP usable (vitlens devices)' });
    else
      out.push({
        id: 'ort-cuda',
        run: false,
        why: cuda?.usable
          ? 'CUDA EP installed but no NVIDIA GPU is visible'
          : `CUDA EP unusable: ${cuda?.reason ?? ep('cuda')?.reason ?? 'not installed'}`,
      });
  } else if (ep('cuda'))
    out.push({ id: 'ort-cuda', run: false, why: 'this CLI has no ort-cuda runtime (its --backend does not list it)' });

  if (has('torch-cpu')) {
    if (!torchCudaRuns && torch?.available && kinds.has('cpu'))
      out.push({ id: 'torch-cpu', run: true, why: `${torchWhere} on its CPU (no CUDA device: the peer on the CPU)` });
    else
      out.push({
        id: 'torch-cpu',
        run: false,
        why: torchCudaRuns ? 'PyTorch runs on CUDA here' : `no PyTorch: ${torch?.reason ?? 'not found'}`,
      });
  }

  if (has('ort-cpu')) {
    if (ort?.available) {
      const h = d.host;
      out.push({
        id: 'ort-cpu',
        run: true,
        why: `onnxruntime-node ${ort.version ?? ''} on ${h?.cores ?? '?'} threads of ${h?.cpuModel ?? 'the CPU'}`.replace(
          /\s+/g,
          ' ',
        ),
      });
    } else
      out.push({
        id: 'ort-cpu',
        run: false,
        why: `onnxruntime-node not loadable: ${ort?.reason ?? 'no answer from vitlens devices'}`,
      });
  }

  const ranked = (id: string) => {
    const i = (CHECK_ORDER as readonly string[]).indexOf(id);
    return i < 0 ? CHECK_ORDER.length : i;
  };
  out.sort((a, b) => ranked(a.id) - ranked(b.id));

  for (const id of also) {
    if (out.some((c) => c.id === id && c.run)) continue;
    const at = out.findIndex((c) => c.id === id);
    if (at >= 0) out.splice(at, 1);
    out.push(
      has(id)
        ? { id, run: true, why: 'asked for with --also (whether it can run here, its own run says)' }
        : { id, run: false, why: 'asked for with --also, but this CLI does not accept it' },
    );
  }
  for (const id of accepted)
    if (!out.some((c) => c.id === id)) out.push({ id, run: false, why: 'not part of the GPU check (--also adds it)' });
  return out;
}

// ---------------------------------------------------------------------------------------
// How long each benchmark may take

export interface BenchSlot {
  /** Seconds the step may run before it is killed. */
  timeoutS: number;
  /** Extra `vitlens bench` flags: none for the full benchmark, a smaller budget and no sweep when time is short. */
  flags: string[];
  mode: 'full' | 'reduced' | 'short' | 'quick';
}

/** Below this much time per remaining runtime, the full benchmark (1.5 s per case and the scaling sweep) is not tried. */
export const FULL_BENCH_S = 100;
/** What a later runtime keeps for itself when an earlier one may run long: a short run fits. */
export const KEEP_PER_LATER_S = 40;

/**
 * The time a runtime's benchmark gets, from what is left: each remaining runtime's fair share
 * chooses how thorough it is, and it may run into the later ones' shares (a GPU run that finishes
 * early leaves its time to them; one that needs longer than its share is not killed for it) as
 * long as each later one keeps KEEP_PER_LATER_S. `quick`: the dry run's smallest benchmark.
 */
export function benchSlot(remainingS: number, runtimesLeft: number, quick: boolean): BenchSlot {
  const n = Math.max(1, runtimesLeft);
  const share = remainingS / n;
  const timeoutS = Math.max(15, Math.floor(remainingS - KEEP_PER_LATER_S * (n - 1)));
  if (quick) return { timeoutS, flags: ['--budget-ms', '150', '--no-scaling'], mode: 'quick' };
  if (share >= FULL_BENCH_S) return { timeoutS, flags: [], mode: 'full' };
  if (share >= 0.6 * FULL_BENCH_S) return { timeoutS, flags: ['--budget-ms', '700'], mode: 'reduced' };
  return { timeoutS, flags: ['--budget-ms', '250', '--no-scaling'], mode: 'short' };
}

// ---------------------------------------------------------------------------------------
// One report from the per-runtime ones

/** What `vitlens bench --out` writes: the report with the device probe beside it. */
export type BenchJson = BenchReport & { devices?: unknown };

/**
 * The per-runtime reports as one, as if one run had measured every runtime: runtimes, cases,
 * fits and limits side by side (each already names its runtime), the harness overhead summed,
 * notes once each. A runtime one run measured is not "unavailable" because another run did not ask for it.
 */
export function mergeBench(reports: BenchJson[]): BenchJson {
  if (reports.length === 0) throw new Error('no benchmark report to merge');
  const [first] = reports as [BenchJson, ...BenchJson[]];
  const measured = new Set(reports.flatMap((r) => r.runtimes.map((x) => x.id)));
  const unavailable = reports.flatMap((r) => r.unavailable).filter((u) => !measured.has(u.id));
  const sum = (f: (o: BenchReport['overhead']) => number) => reports.reduce((s, r) => s + f(r.overhead), 0);
  const totalMs = sum((o) => o.totalMs);
  const harness = sum((o) => o.processStartMs + o.probeMs + o.buildMs + o.sessionMs);
  return {
    ...first,
    startedAt: reports.map((r) => r.startedAt).sort()[0]!,
    runtimes: reports.flatMap((r) => r.runtimes),
    unavailable: unavailable.filter((u, i) => unavailable.findIndex((v) => v.id === u.id) === i),
    cases: reports.flatMap((r) => r.cases),
    scaling: reports.flatMap((r) => r.scaling),
    limits: reports.flatMap((r) => r.limits ?? []),
    overhead: {
      processStartMs: sum((o) => o.processStartMs),
      probeMs: sum((o) => o.probeMs),
      buildMs: sum((o) => o.buildMs),
      sessionMs: sum((o) => o.sessionMs),
      totalMs,
      fraction: totalMs > 0 ? harness / totalMs : 0,
    },
    notes: [...new Set(reports.flatMap((r) => r.notes))],
  };
}

// ---------------------------------------------------------------------------------------
// Size

/** What the device machine takes: the working tree and the carried paths, 64 MiB together. */
export const DEVICE_LIMIT_BYTES = 64 * 1024 * 1024;
/** What prepare allows itself, so the working tree may grow a little before the check stops fitting. */
export const PREPARE_LIMIT_BYTES = 60 * 1024 * 1024;

export interface SizeLine {
  what: string;
  bytes: number;
}

/** The bytes that travel and whether they fit under `limit`, as lines prepare prints. */
export function sizeBudget(
  treeBytes: number,
  bundle: SizeLine[],
  limit = PREPARE_LIMIT_BYTES,
): { total: number; fits: boolean; lines: string[] } {
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MiB`;
  const bundleBytes = bundle.reduce((s, l) => s + l.bytes, 0);
  const total = treeBytes + bundleBytes;
  const width = Math.max(...bundle.map((l) => l.what.length), 'working tree (tracked + untracked, not ignored)'.length);
  const row = (what: string, bytes: number) => `  ${what.padEnd(width)}  ${mib(bytes).padStart(11)}`;
  const lines = [
    row('working tree (tracked + untracked, not ignored)', treeBytes),
    ...bundle.map((l) => row(l.what, l.bytes)),
    row('total', total),
    `  limit ${mib(limit)} (the device machine takes ${mib(DEVICE_LIMIT_BYTES)}): ${total <= limit ? 'fits' : 'TOO LARGE'}, ${mib(Math.abs(limit - total))} ${total <= limit ? 'to spare' : 'over'}`,
  ];
  return { total, fits: total <= limit, lines };
}

// ---------------------------------------------------------------------------------------
// Summary

export interface StepRecord {
  name: string;
  /** Exit status; 124/137: killed by its timeout; -1: not run (out of time). */
  rc: number;
  seconds: number;
  note: string;
}

/** steps.tsv as run.sh writes it: name, status, seconds, note (tab-separated). */
export function parseSteps(tsv: string): StepRecord[] {
  return tsv
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [name = '', rc = '', seconds = '', ...note] = l.split('\t');
      return { name, rc: Number(rc), seconds: Number(seconds), note: note.join('\t') };
    });
}

export function stepStatus(s: StepRecord): string {
  if (s.rc === 0) return 'ok';
  if (s.rc === -1) return 'not run';
  if (s.rc === 124 || s.rc === 137) return 'TIMED OUT';
  return `FAILED (exit ${s.rc})`;
}

export interface SummaryInput {
  title: string;
  /** Lines about the machine and the environment run.sh set (loader, ICD, node), as run.sh wrote them. */
  environment: string[];
  devices: (DevicesView & { probedAt?: string }) | null;
  choices: RuntimeChoice[];
  steps: StepRecord[];
  bench: BenchJson[];
  /** Per runtime: the tiny official checkpoint's logits and their largest difference to the official ones. */
  tiny: { runtime: string; report: InferReport | null; maxAbsDiff: number | null }[];
  /** Per runtime: soft_tiny with seeded random weights on two photos. */
  softTiny: { runtime: string; report: InferReport | null }[];
  files: string[];
  wallS: number;
}

/** The tiny checkpoint's logits match the official ones to this (the CLI's own test holds ORT CPU to 2e-7; GPUs reorder sums). */
export const TINY_TOLERANCE = 1e-4;

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** Three significant digits, no exponent: "0.412", "4.12", "412", "4120". */
const sig3 = (x: number) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

/** The config cases as a table: a row per case, a column per runtime, medians in ms. */
function caseTable(bench: BenchJson[]): string[] {
  const runtimes = bench.flatMap((r) => r.runtimes.map((x) => x.id));
  const key = (c: BenchCase) => `${c.stage}\t${c.attention}\t${c.level}\t${c.tokens}`;
  const rows = new Map<string, Map<string, string>>();
  for (const c of bench.flatMap((r) => r.cases)) {
    if (c.group !== 'config') continue;
    const k = key(c);
    if (!rows.has(k)) rows.set(k, new Map());
    rows.get(k)!.set(c.runtime, c.status === 'ok' && c.timingMs ? fmtMs(c.timingMs.median) : c.status);
  }
  if (rows.size === 0) return [];
  const head = ['stage', 'attention', 'level', 'tokens', ...runtimes];
  const body = [...rows].map(([k, v]) => [...k.split('\t'), ...runtimes.map((r) => v.get(r) ?? '—')]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    '  ' + cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)];
}

export function summaryText(s: SummaryInput): string {
  const out: string[] = [s.title, ''];
  out.push('Environment (run.sh):', ...s.environment.map((l) => `  ${l}`), '');

  out.push('Devices (vitlens devices --json):');
  const d = s.devices;
  if (!d) out.push('  none: the devices step failed (see log.txt)');
  else {
    const h = d.host;
    out.push(`  host: ${h?.cpuModel ?? '?'}, ${h?.cores ?? '?'} threads, node ${h?.node ?? '?'}`);
    if (d.nvidia?.available)
      for (const g of d.nvidia.gpus ?? [])
        out.push(`  NVIDIA GPU ${g.index}: ${g.name}${g.driverVersion ? `, driver ${g.driverVersion}` : ''}`);
    else out.push(`  NVIDIA: ${d.nvidia?.reason ?? 'none'}`);
    const adapters = d.webgpu?.adapters ?? [];
    if (adapters.length) for (const a of adapters) out.push(`  WebGPU adapter: ${adapterLabel(a)}`);
    else out.push(`  WebGPU: ABSENT — ${d.webgpu?.reason ?? 'no adapter'}`);
    const p = d.pytorch;
    if (p?.available && p.torch) {
      out.push(
        `  PyTorch ${p.torch.version} (${p.torch.cuda ? `CUDA ${p.torch.cuda}` : p.torch.hip ? `ROCm ${p.torch.hip}` : 'CPU-only build'}) in ${p.python?.executable ?? '?'}`,
      );
      for (const x of p.devices ?? []) if (x.kind !== 'cpu') out.push(`    torch ${x.kind}:${x.index}: ${x.name}`);
      if (!p.cuda?.available) out.push(`    no CUDA device: ${p.cuda?.reason ?? 'unknown'}`);
    } else out.push(`  PyTorch: none (${p?.reason ?? 'not found'})`);
    const o = d.onnxruntime;
    out.push(
      `  onnxruntime-node ${o?.version ?? '(not loadable)'}: EPs ${(o?.backends ?? []).map((b) => `${b.name}${b.bundled || b.installed ? '' : ' (absent)'}`).join(', ')}`,
    );
    // The CLI explains a missing CUDA EP at length; the whole reason is under Runtimes, ort-cuda.
    if (o?.cuda) out.push(`    CUDA EP: ${o.cuda.usable ? 'usable' : `unusable — ${clip(o.cuda.reason ?? '?', 140)}`}`);
    if (d.gpuVisibility && d.gpuVisibility.webgpuReachesIt === false)
      out.push(`  WARNING: ${d.gpuVisibility.diagnosis ?? 'WebGPU does not reach the GPU'}`);
  }
  out.push('');

  out.push('Runtimes (ids from the CLI; each figure below is from the runtime and device named here):');
  const width = Math.max(...s.choices.map((c) => c.id.length), 10);
  for (const c of s.choices) out.push(`  ${c.id.padEnd(width)}  ${c.run ? 'RUN ' : 'skip'}  ${c.why}`);
  out.push('');

  out.push('Steps:');
  const sw = Math.max(...s.steps.map((x) => x.name.length), 4);
  for (const x of s.steps)
    out.push(
      `  ${x.name.padEnd(sw)}  ${stepStatus(x).padEnd(16)} ${x.rc === -1 ? '' : `${x.seconds.toFixed(0).padStart(4)} s`}${x.note ? `  ${x.note}` : ''}`,
    );
  out.push('');

  out.push(
    `Inference, tiny official checkpoint (fixtures/ref/tiny_soft.pth, 64×64 input) against the official logits (tolerance ${TINY_TOLERANCE}):`,
  );
  for (const t of s.tiny) {
    if (!t.report) {
      out.push(`  ${t.runtime}: no result (see steps)`);
      continue;
    }
    const verdict = t.maxAbsDiff === null ? 'not compared' : t.maxAbsDiff <= TINY_TOLERANCE ? 'MATCH' : 'MISMATCH';
    out.push(
      `  ${t.runtime} on ${t.report.runtime.device}: max |Δlogit| ${t.maxAbsDiff?.toExponential(2) ?? '—'} ${verdict}; forward ${fmtMs(t.report.timingMs.forward)} ms (first run)`,
    );
  }
  out.push(
    '',
    'Inference, soft_tiny at 224 with seeded random weights (no soft_tiny checkpoint travels: see run.sh), 2 photos:',
  );
  for (const t of s.softTiny) {
    if (!t.report) {
      out.push(`  ${t.runtime}: no result (see steps)`);
      continue;
    }
    const tm = t.report.timingMs;
    out.push(
      `  ${t.runtime} on ${t.report.runtime.device}: forward ${fmtMs(tm.forward)} ms for batch ${t.report.input.batch} (one run, the first: shader or kernel compilation included); graph ${fmtMs(tm.build)} ms, session ${fmtMs(tm.session)} ms`,
    );
  }
  out.push('');

  out.push('Benchmark, SOFT_Tiny (fixtures/configs/soft/SOFT_Tiny.yaml):');
  if (s.bench.length === 0) out.push('  no benchmark report (see steps)');
  for (const r of s.bench) {
    for (const x of r.runtimes) {
      const l = r.limits?.find((m) => m.runtime === x.id);
      const cases = r.cases.filter((c) => c.runtime === x.id);
      const ok = cases.filter((c) => c.status === 'ok').length;
      const errors = cases.flatMap((c) => (c.relErrorVsReference == null ? [] : [c.relErrorVsReference]));
      out.push(
        `  ${x.id}: ${x.runtime} on ${x.device}${x.software ? ' [SOFTWARE: not GPU performance]' : ''}; ${ok}/${cases.length} cases ok` +
          (errors.length
            ? `; max rel.err vs the float64 reference ${Math.max(...errors).toExponential(1)} over ${errors.length} checked`
            : '') +
          (l
            ? `; limits ${sig3(l.matmul.gflopsPerSecond)} GFLOP/s fp32 matmul, ${sig3(l.read.gbPerSecond)} GB/s read`
            : ''),
      );
    }
    for (const u of r.unavailable) out.push(`  ${u.id}: unavailable — ${u.reason}`);
  }
  const table = caseTable(s.bench);
  if (table.length) out.push('', '  median ms per case (config shapes, batch 1):', ...table);
  const fits = s.bench.flatMap((r) => r.scaling);
  if (fits.length) {
    out.push('', '  scaling with tokens at 49 landmarks, time ∝ tokensᵇ:');
    for (const f of fits)
      out.push(
        `    ${f.runtime} ${f.attention}: b = ${f.timeExponent.toFixed(2)} (r² ${f.timeR2.toFixed(3)}) over ${f.tokens[0]}…${f.tokens[f.tokens.length - 1]} tokens`,
      );
  }
  const failed = s.bench.flatMap((r) => r.cases).filter((c) => c.status === 'failed');
  if (failed.length) {
    out.push('', '  failed cases:');
    for (const c of failed.slice(0, 20))
      out.push(`    ${c.runtime} stage ${c.stage} ${c.attention} ${c.level} @ ${c.tokens}: ${c.message}`);
    if (failed.length > 20) out.push(`    … and ${failed.length - 20} more (bench.json)`);
  }
  out.push('', `Files: ${s.files.join(', ')}`, `Wall time: ${s.wallS.toFixed(0)} s`);
  return out.join('\n') + '\n';
}
