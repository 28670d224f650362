/**
 * The CLI's runtime commands: `devices`, `bench`, `pinv`. Benchmarks run in this process (the
 * CLI is its own process already; the language server is the one that isolates them in a
 * worker). Text output names the runtime and device of every figure; --json gives everything.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import type { BenchReport, PinvMatrixReport, PinvReport, RuntimeId } from '../../protocol/results';
import { ATTENTION_KINDS, NEWTON_VARIANTS, type AttentionKind, type NewtonVariant } from '../core/models/spec';
import { adapterLabel, probeDevices, type DeviceReport } from '../runtimes/devices';
import { runBenchmark } from '../jobs/bench/harness';
import { analyseMatrices, analysePinv } from '../jobs/pinv';
import { ALL_RUNTIMES } from '../runtimes/runners';
import { intArg, loadConfigSpec, UsageError } from './main';
import { bytes } from '../core/profile/format';
import { dashboardData } from '../report/data';
import { writeReport } from '../report/html';
import { PRODUCER } from '../core/version';

type Out = (s: string) => void;

function devicesText(r: DeviceReport): string {
  const out = [`Host: ${r.host.cpuModel}, ${r.host.cores} threads, ${bytes(r.host.totalMemoryBytes)} RAM, node ${r.host.node}`];
  out.push(`onnxruntime-node ${r.onnxruntime.version ?? '(not loadable)'}: ${r.onnxruntime.backends.map((b) => `${b.name}${b.bundled ? '' : ' (not bundled)'}`).join(', ') || r.onnxruntime.reason}`);
  if (r.webgpu.adapters.length === 0) out.push(`WebGPU: no adapter (${r.webgpu.reason ?? 'none found'})`);
  for (const a of r.webgpu.adapters) out.push(`WebGPU adapter: ${adapterLabel(a)} — maxStorageBufferBindingSize ${bytes(a.limits.maxStorageBufferBindingSize)}, maxBufferSize ${bytes(a.limits.maxBufferSize)}`);
  if (r.nvidia.available) for (const g of r.nvidia.gpus) out.push(`NVIDIA GPU ${g.index}: ${g.name}, ${g.memoryUsedMiB}/${g.memoryTotalMiB} MiB used, driver ${g.driverVersion}`);
  else out.push(`NVIDIA: ${r.nvidia.reason ?? 'none'}`);
  return out.join('\n');
}

export async function devicesCommand(args: string[], stdout: Out): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' } } });
  const r = await probeDevices();
  const { probeTfjsBackends } = await import('../runtimes/tfjs');
  const tfjs = await probeTfjsBackends();
  if (values.json) stdout(JSON.stringify({ ...r, tfjs }, null, 2));
  else {
    stdout(devicesText(r));
    for (const t of tfjs) stdout(`TF.js ${t.name}: ${t.available ? 'available' : `unavailable — ${t.reason}`}`);
  }
  return 0;
}

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

function benchText(r: BenchReport): string {
  const out: string[] = [`${r.config ?? r.model}: ${r.model}`];
  for (const d of r.runtimes) out.push(`  ${d.id}: ${d.runtime} on ${d.device}`);
  for (const u of r.unavailable) out.push(`  ${u.id}: unavailable — ${u.reason}`);
  const head = ['runtime', 'group', 'stage', 'attention', 'level', 'tokens', 'm', 'median ms', 'p10–p90 ms', 'GFLOP/s', 'mem est.', 'mem measured', 'rel.err'];
  out.push('', head.join('\t'));
  for (const c of r.cases) {
    if (c.status !== 'ok') {
      out.push([c.runtime, c.group, c.stage, c.attention, c.level, c.tokens, c.landmarks ?? '', `${c.status}: ${c.message}`].join('\t'));
      continue;
    }
    const t = c.timingMs!;
    const measured = c.memory.filter((m) => m.kind === 'measured').map((m) => bytes(m.bytes)).join(', ');
    out.push([c.runtime, c.group, c.stage, c.attention, c.level, c.tokens, c.landmarks ?? '', ms(t.median), `${ms(t.p10)}–${ms(t.p90)}`, c.gflopsPerSecond!.toFixed(2), bytes(c.memory[0]!.bytes), measured || '—', c.relErrorVsReference?.toExponential(1) ?? '—'].join('\t'));
  }
  if (r.scaling.length) {
    out.push('', 'Scaling with tokens (fixed landmark count), fitted exponents b of ∝ tokensᵇ:');
    for (const s of r.scaling) {
      const robust = s.timeExponentTheilSen !== undefined ? `, Theil–Sen ${s.timeExponentTheilSen.toFixed(2)}` : '';
      const contended = s.contendedPoints ? `; ${s.contendedPoints} point(s) timed while other processes were busy` : '';
      out.push(`  ${s.runtime} ${s.attention}: time b = ${s.timeExponent.toFixed(2)} (r² ${s.timeR2.toFixed(3)}${robust}), memory b = ${s.memoryExponent.toFixed(2)} over ${s.tokens[0]}…${s.tokens[s.tokens.length - 1]} tokens${contended}`);
    }
  }
  const o = r.overhead;
  out.push('', `Harness overhead: process start ${o.processStartMs.toFixed(0)} ms + device probe ${o.probeMs.toFixed(0)} ms + graph builds ${o.buildMs.toFixed(0)} ms + sessions ${o.sessionMs.toFixed(0)} ms = ${(o.fraction * 100).toFixed(1)} % of ${(o.totalMs / 1000).toFixed(1)} s`);
  for (const n of r.notes) out.push(`note: ${n}`);
  return out.join('\n');
}

function listArg(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

export async function benchCommand(args: string[], stdout: Out, stderr: Out): Promise<number> {
  const processStartedAt = Date.now() - performance.now();
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      backend: { type: 'string', multiple: true },
      resolution: { type: 'string', multiple: true },
      tokens: { type: 'string', multiple: true },
      stage: { type: 'string', multiple: true },
      attention: { type: 'string', multiple: true },
      level: { type: 'string', multiple: true },
      'no-scaling': { type: 'boolean' },
      'scaling-tokens': { type: 'string', multiple: true },
      'budget-ms': { type: 'string' },
      batch: { type: 'string' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      html: { type: 'string' },
      quiet: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('bench needs exactly one config file.');
  const backends = listArg(values.backend);
  for (const b of backends) if (!ALL_RUNTIMES.includes(b as RuntimeId)) throw new UsageError(`--backend ${b}: expected one of ${ALL_RUNTIMES.join(', ')}.`);
  const attentions = listArg(values.attention);
  for (const a of attentions) if (!ATTENTION_KINDS.includes(a as AttentionKind)) throw new UsageError(`--attention ${a}: expected one of ${ATTENTION_KINDS.join(', ')}.`);
  const levels = listArg(values.level);
  for (const l of levels) if (l !== 'attention' && l !== 'block') throw new UsageError(`--level ${l}: expected attention or block.`);
  const file = positionals[0]!;
  const spec = loadConfigSpec(file, stderr);
  if (typeof spec === 'number' || !spec) return typeof spec === 'number' ? spec : 2;
  const stages = listArg(values.stage).map((s) => intArg('stage', s, 1, spec.stages.length));
  const report = await probeDevices();
  const result = await runBenchmark(
    {
      model: spec,
      config: file,
      ...(backends.length ? { runtimes: backends as RuntimeId[] } : {}),
      ...(attentions.length ? { attentions: attentions as AttentionKind[] } : {}),
      ...(levels.length ? { levels: levels as ('attention' | 'block')[] } : {}),
      ...(values.resolution ? { resolutions: listArg(values.resolution).map((r) => intArg('resolution', r, 16, 8192)) } : {}),
      ...(values.tokens ? { tokens: listArg(values.tokens).map((t) => intArg('tokens', t, 16, 1 << 22)) } : {}),
      ...(values['scaling-tokens'] ? { scalingTokens: listArg(values['scaling-tokens']).map((t) => intArg('scaling-tokens', t, 49, 1 << 22)) } : {}),
      ...(stages.length ? { stages } : {}),
      scaling: !values['no-scaling'],
      ...(values['budget-ms'] ? { budgetMs: intArg('budget-ms', values['budget-ms'], 1, 600000) } : {}),
      ...(values.batch ? { batch: intArg('batch', values.batch, 1, 4096) } : {}),
      processStartedAt,
      onProgress: values.quiet ? () => {} : (m, done, total) => stderr(`[${done + 1}/${total}] ${m}`),
    },
    report,
  );
  const json = JSON.stringify({ devices: report, ...result }, null, 2);
  if (values.out) {
    fs.writeFileSync(values.out, json + '\n');
    if (!values.quiet) stderr(`wrote ${values.out}`);
  }
  if (values.html) {
    // The report shows all three views: the profile and the pinv analysis cost well under a second.
    const resolution = result.cases.find((c) => c.group === 'config')?.resolution ?? spec.resolutions[0] ?? 224;
    const pinv = spec.stages.some((s) => s.attention === 'soft' || s.attention === 'soft_norm') ? analysePinv(spec, { resolution }) : null;
    writeReport(values.html, dashboardData({ spec, source: file, producer: PRODUCER, resolution, bench: result, pinv, view: 'bench' }));
    if (!values.quiet) stderr(`wrote ${values.html}`);
  }
  stdout(values.json ? json : benchText(result));
  return 0;
}

function pinvText(r: PinvReport): string {
  const out = [`${r.model} @ ${r.resolution}: Newton variant ${r.variant} (${r.variantSource}), ${r.iterations} iterations in ${r.arithmetic}; weights ${r.weights}; input ${r.input}`];
  for (const s of r.stages) {
    if (s.skipped) {
      out.push(`stage ${s.stage}: ${s.skipped}`);
      continue;
    }
    for (const h of s.heads) out.push(`stage ${s.stage} head ${h.head} (m = ${h.m}, cond ${h.conditionNumber.toPrecision(3)}): ${h.verdict}; residual ≤ 1e-3 at ${h.reaches['1e-3']!.residual ?? '—'}, ≤ 1e-6 at ${h.reaches['1e-6']!.residual ?? '—'}`);
  }
  out.push(r.summary);
  return out.join('\n');
}

function matricesText(rows: { name: string; report: PinvMatrixReport }[]): string {
  const out: string[] = [];
  for (const { name, report: r } of rows) {
    out.push(`${name} (m = ${r.m}, cond ${r.conditionNumber.toPrecision(3)}): ${r.verdict}`);
    out.push('  k  ‖I − P·V‖_F   ‖AVA − A‖/‖A‖  ‖V − P⁻¹‖/‖P⁻¹‖  predicted');
    for (const i of r.iterations) out.push(`  ${String(i.k).padStart(2)}  ${i.residual.toExponential(3)}   ${i.penrose.toExponential(3)}      ${i.exactError?.toExponential(3) ?? 'n/a'}       ${i.predicted.toExponential(3)}`);
  }
  return out.join('\n');
}

/** Matrices from a JSON file: newton.json's {cases: {name: {A}}}, {name: A}, or a list of A. */
function readMatrices(file: string): { name: string; a: number[][] }[] {
  const data = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  const isMatrix = (x: unknown): x is number[][] => Array.isArray(x) && x.length > 0 && x.every((r) => Array.isArray(r) && r.length === x.length && r.every((v) => typeof v === 'number'));
  const out: { name: string; a: number[][] }[] = [];
  const visit = (name: string, x: unknown) => {
    if (isMatrix(x)) out.push({ name, a: x });
    else if (x && typeof x === 'object' && isMatrix((x as { A?: unknown }).A)) out.push({ name, a: (x as { A: number[][] }).A });
  };
  if (Array.isArray(data) && !isMatrix(data)) data.forEach((x, i) => visit(`matrix ${i}`, x));
  else if (isMatrix(data)) visit('matrix', data);
  else if (data && typeof data === 'object') for (const [k, v] of Object.entries((data as { cases?: object }).cases ?? data)) visit(k, v);
  if (out.length === 0) throw new UsageError(`${file}: no square matrices found (expected {cases: {name: {A: [[…]]}}}, {name: [[…]]} or [[[…]]]).`);
  return out;
}

export function pinvCommand(args: string[], stdout: Out, stderr: Out): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      resolution: { type: 'string' },
      iterations: { type: 'string' },
      float64: { type: 'boolean' },
      seed: { type: 'string' },
      matrices: { type: 'string' },
      variant: { type: 'string' },
      json: { type: 'boolean' },
      html: { type: 'string' },
    },
  });
  const dtype = values.float64 ? 'float64' : 'float32';
  const iterations = values.iterations ? intArg('iterations', values.iterations, 0, 1000) : undefined;
  if (values.matrices) {
    const variant = (values.variant ?? 'A') as NewtonVariant;
    if (!NEWTON_VARIANTS.includes(variant)) throw new UsageError(`--variant must be A or B, got "${values.variant}".`);
    const rows = readMatrices(values.matrices).map(({ name, a }) => ({
      name,
      report: analyseMatrices(dtype === 'float64' ? Float64Array.from(a.flat()) : Float32Array.from(a.flat()), a.length, 1, variant, iterations ?? 20, dtype)[0]!,
    }));
    stdout(values.json ? JSON.stringify({ file: values.matrices, variant, arithmetic: dtype, matrices: rows.map((r) => ({ name: r.name, ...r.report })) }, null, 2) : matricesText(rows));
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('pinv needs one config file (or --matrices FILE).');
  const spec = loadConfigSpec(positionals[0]!, stderr);
  if (typeof spec === 'number' || !spec) return typeof spec === 'number' ? spec : 2;
  const resolution = values.resolution ? intArg('resolution', values.resolution, 16, 4096) : (spec.resolutions[0] ?? 224);
  const r = analysePinv(spec, { resolution, dtype, ...(iterations !== undefined ? { iterations } : {}), ...(values.seed ? { seed: intArg('seed', values.seed, 0, 2 ** 31) } : {}) });
  if (values.html) {
    writeReport(values.html, dashboardData({ spec, source: positionals[0]!, producer: PRODUCER, resolution, pinv: r, view: 'pinv' }));
    stderr(`wrote ${values.html}`);
  }
  stdout(values.json ? JSON.stringify(r, null, 2) : pinvText(r));
  return 0;
}
