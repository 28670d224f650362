/**
 * Training-step target (issue 17, point 4): one training step — forward, then backward from the
 * output with a fixed cotangent, gradients with respect to the input and every parameter — of the
 * SOFT stage-1 attention of soft_tiny at 224 (N = 3136, D = 64, 2 heads, m = 49, 20 Newton
 * iterations, batch 1) on ORT CPU against PyTorch eager autograd on the same cores, in one run.
 *
 * - ORT: the benchmark harness's training step (`vitlens bench --train`): the forward graph and the
 *   backward graph ViT Lens derives from it (engine/autodiff.ts), one ONNX session.
 * - PyTorch: the same forward program (lowerings/torch.ts, evaluated op by op with the PyTorch
 *   runtime's interpreter) with requires_grad on the input and every parameter, then
 *   torch.autograd.backward; SOFT's Newton inverse as a torch.autograd.Function like the official
 *   `_NewtonInverseKernel` (iterations forward only, −Vᵀ·G·Vᵀ backward), which is what ViT Lens's
 *   analytic rule does (scripts/perf/pytorch-training-step.py). Its gradients are checked against
 *   the float64 reference too, so both sides compute the same thing.
 *
 * Then backward MACs / forward MACs of every attention and block of soft_tiny at 224 (target
 * 1.5–2.5×), read off the training-step graphs with graphCost, with the reason for each outlier.
 *
 *   node --import tsx scripts/perf/training-vs-pytorch.ts [--budget-ms 4000] [--threads N] [--python /usr/bin/python3]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { analyzeConfig } from '../../server/core/config/analyze';
import { ReferenceRuntime } from '../../server/core/engine/lowerings/reference';
import { lowerToTorch } from '../../server/core/engine/lowerings/torch';
import { operandsOf, type Graph } from '../../server/core/engine/graph';
import { normals, seededRandom } from '../../server/core/engine/weights';
import { ATTENTION_KINDS, type ModelSpec } from '../../server/core/models/spec';
import { benchCaseGraph, runBenchmark } from '../../server/jobs/bench/harness';
import { probeDevices } from '../../server/runtimes/probe';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/**
 * glibc's allocator settings the PyTorch runtime gives its Python (server/runtimes/torch/process.ts):
 * freed blocks kept for reuse, as onnxruntime's arena does, so neither side page-faults each run's
 * tensors in afresh. The caller's own settings win.
 */
const ALLOCATOR_ENV = {
  MALLOC_MMAP_THRESHOLD_: String(2 ** 32),
  MALLOC_TRIM_THRESHOLD_: String(2 ** 36),
  MALLOC_TOP_PAD_: String(2 ** 29),
};

/**
 * The custom-gradient regions of `graph` below `output`: for each tensor with a GradientRule, the
 * nodes between the rule's inputs and it (those that depend on an input and that it depends on), in
 * order, and of those the ones nothing outside the region reads (the PyTorch side skips them
 * outside its autograd.Function).
 */
function gradientRegions(graph: Graph, output: number) {
  const readers = new Map<number, number[]>();
  graph.nodes.forEach(({ node, out }) => {
    if (out.id > output) return;
    for (const t of operandsOf(node)) readers.set(t.id, [...(readers.get(t.id) ?? []), out.id]);
  });
  return [...graph.gradientRules].map(([id, rule]) => {
    const from = new Set(rule.inputs.map((t) => t.id));
    const dependsOnInput = new Set<number>();
    for (let i = Math.min(...from) + 1; i <= id; i++)
      if (operandsOf(graph.nodes[i]!.node).some((t) => from.has(t.id) || dependsOnInput.has(t.id)))
        dependsOnInput.add(i);
    const feeds = new Set<number>([id]);
    for (let i = id; i >= 0; i--) if (feeds.has(i)) for (const t of operandsOf(graph.nodes[i]!.node)) feeds.add(t.id);
    const nodes = [...dependsOnInput].filter((i) => feeds.has(i)).sort((a, b) => a - b);
    const inside = new Set(nodes);
    const inner = nodes.filter((i) => i !== id && (readers.get(i) ?? []).every((r) => inside.has(r)));
    return { output: id, inputs: [...from], nodes, inner, label: rule.label };
  });
}

function relError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(out[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return diff / (scale || 1);
}

/** PyTorch's side: the forward program with autograd, timed in its own Python. */
function pytorchTrainingStep(spec: ModelSpec, python: string, threads: number, budgetMs: number) {
  const built = benchCaseGraph(spec, { stage: 1, attention: 'soft', level: 'attention', train: {} });
  if (typeof built === 'string') throw new Error(built);
  const { graph, forward } = built;
  const xNode = graph.inputs.find((i) => i.name === 'x')!;
  const x = normals(
    xNode.tensor.shape.reduce((a, b) => a * b, 1),
    seededRandom(1),
  ); // the harness's input
  const feeds = built.feeds(x);
  const { program, buffers } = lowerToTorch(graph, [forward], built.weights);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitlens-train-torch-'));
  try {
    const regions = gradientRegions(graph, forward.id);
    fs.writeFileSync(
      path.join(dir, 'program.json'),
      JSON.stringify({
        program,
        regions,
        x: { name: 'x', file: 'x.bin' },
        cotangent: { file: 'cotangent.bin' },
      }),
    );
    fs.writeFileSync(
      path.join(dir, 'buffers.bin'),
      Buffer.concat(buffers.map((b) => Buffer.from(Float32Array.from(b).buffer))),
    );
    fs.writeFileSync(path.join(dir, 'x.bin'), Buffer.from(x.buffer));
    fs.writeFileSync(path.join(dir, 'cotangent.bin'), Buffer.from(feeds.cotangent!.buffer));
    execFileSync(
      python,
      [
        path.join(__dirname, 'pytorch-training-step.py'),
        dir,
        '--threads',
        String(threads),
        '--budget-ms',
        String(budgetMs),
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...ALLOCATOR_ENV, ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      },
    );
    const result = JSON.parse(fs.readFileSync(path.join(dir, 'result.json'), 'utf8'));
    const raw = fs.readFileSync(path.join(dir, 'grads.bin'));
    const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    // Torch's gradients against the float64 reference of ViT Lens's own training-step graph.
    const names = built.outputNames;
    const ref = new ReferenceRuntime('float64').run(graph, feeds, built.weights, built.outputs);
    let at = 0;
    let worst = { name: '', error: 0 };
    for (const g of result.grads as { name: string; numel: number }[]) {
      const i = names.indexOf(g.name);
      if (i < 0) throw new Error(`PyTorch returned ${g.name}, which the training step has not`);
      const e = relError(all.subarray(at, at + g.numel), ref[i]!.data);
      at += g.numel;
      if (!(e <= worst.error)) worst = { name: g.name, error: e };
    }
    const gradients = names.filter((n) => n.startsWith('d/d')).length;
    if (result.grads.length !== gradients)
      throw new Error(`PyTorch returned ${result.grads.length} gradients, the step has ${gradients}`);
    return { ...result, worst, regions: regions.map((r) => r.label) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Why a case's backward/forward ratio is off 2×, from what its graph holds. */
function outlierReason(attention: string, level: string): string {
  if (attention === 'soft' || attention === 'soft_norm')
    return "the Newton iterations' 20·2·h·m³ forward MACs get the analytic gradient's 2·h·m³ back, not twice theirs";
  if (attention === 'performer')
    return 'the random features ω are a constant: x·ωᵀ needs dX only (1× its forward, not 2×)';
  return `${level}: see the graph`;
}

async function main() {
  const budgetMs = Number(flag('--budget-ms')) || 4000;
  const threads = Number(flag('--threads')) || os.availableParallelism();
  const spec = analyzeConfig(
    fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'configs', 'soft', 'SOFT_Tiny.yaml'), 'utf8'),
  ).spec!;
  const report = await probeDevices({ webgpu: false, nvidia: false, pytorch: { python: flag('--python') ?? null } });
  if (!report.pytorch.available || !report.pytorch.python)
    throw new Error(`no PyTorch: ${report.pytorch.reason ?? 'not found'}`);

  const ours = await runBenchmark(
    {
      model: spec,
      config: 'SOFT_Tiny.yaml',
      runtimes: ['ort-cpu'],
      stages: [1],
      attentions: ['soft'],
      levels: ['attention'],
      scaling: false,
      limits: false,
      budgetMs,
      // The step is ~330 MMACs, above the harness's default 3e8 cap on reference checks.
      referenceMacsLimit: 1e9,
      train: {},
    },
    report,
  );
  const c = ours.cases[0]!;
  if (c.status !== 'ok') throw new Error(`ORT CPU: ${c.status}: ${c.message}`);
  const torch = pytorchTrainingStep(spec, report.pytorch.python.executable, threads, budgetMs);

  const o = c.timingMs!;
  const t = torch.timingMs;
  console.log(
    `soft_tiny stage 1 SOFT attention at 224: N = ${c.tokens}, D = ${c.dim}, ${c.heads} heads, ${c.setting}, batch ${c.batch}`,
  );
  console.log(
    `training step: forward ${(c.training!.forwardMacs / 1e6).toFixed(1)} MMACs + backward ${(c.training!.backwardMacs / 1e6).toFixed(1)} MMACs; gradients w.r.t. x and ${c.training!.parameters} parameters (${c.training!.parameterValues} values); Newton inverse ${c.training!.newtonBackward}`,
  );
  console.log(`ORT:     ${ours.runtimes[0]!.runtime} on ${ours.runtimes[0]!.device}`);
  console.log(
    `PyTorch: ${torch.torch} eager autograd (Python ${torch.python}, ${torch.threads} threads, BLAS ${(torch.blas ?? []).join(', ') || 'unknown'}); custom gradients: ${torch.regions.join('; ') || 'none'}`,
  );
  console.log(
    `\nORT CPU      median ${o.median.toFixed(2)} ms (p10–p90 ${o.p10.toFixed(2)}–${o.p90.toFixed(2)}, spread ${(o.relSpread * 100).toFixed(0)} %, n = ${o.n}); rel.err vs float64 ${c.relErrorVsReference?.toExponential(1)} (worst: ${c.training!.worstOutput})`,
  );
  console.log(
    `PyTorch      median ${t.median.toFixed(2)} ms (p10–p90 ${t.p10.toFixed(2)}–${t.p90.toFixed(2)}, spread ${(t.relSpread * 100).toFixed(0)} %, n = ${t.n}); rel.err vs float64 ${torch.worst.error.toExponential(1)} (worst: ${torch.worst.name})`,
  );
  console.log(`ratio PyTorch / ORT = ${(t.median / o.median).toFixed(2)}× (above 1: ORT is faster)`);
  const busy = c.hostLoad?.otherCores;
  if (busy != null && busy > 0.25)
    console.log(
      `note: other processes used ${busy.toFixed(2)} of ${os.availableParallelism()} cores while ORT's steps were timed; both figures are then slower and noisier than on a quiet machine`,
    );

  console.log('\nBackward / forward MACs of soft_tiny at 224 (training steps, batch 1; target 1.5–2.5×):');
  console.log('stage  attention   level      tokens  forward MMACs  backward MMACs  bwd/fwd');
  const outliers: string[] = [];
  for (const stage of spec.stages) {
    for (const attention of ATTENTION_KINDS) {
      for (const level of ['attention', 'block'] as const) {
        const built = benchCaseGraph(spec, { stage: stage.index, attention, level, train: {} });
        if (typeof built === 'string') continue;
        const f = built.training!;
        const ratio = f.backwardOverForward;
        const tokens = built.graph.inputs[0]!.tensor.shape[1]!;
        const flag = ratio < 1.5 || ratio > 2.5 ? '  ← outside' : '';
        console.log(
          `${String(stage.index).padEnd(6)} ${attention.padEnd(11)} ${level.padEnd(9)} ${String(tokens).padStart(7)}  ${(f.forwardMacs / 1e6).toFixed(1).padStart(13)}  ${(f.backwardMacs / 1e6).toFixed(1).padStart(14)}  ${ratio.toFixed(2)}×${flag}`,
        );
        if (flag)
          outliers.push(
            `stage ${stage.index} ${attention} ${level} (${ratio.toFixed(2)}×): ${outlierReason(attention, level)}`,
          );
      }
    }
  }
  console.log(
    outliers.length ? `\noutside 1.5–2.5×:\n  ${outliers.join('\n  ')}` : '\nevery attention and block within 1.5–2.5×',
  );
  console.log(
    'A matmul whose operands both need gradients costs 2× its forward (dA = G·Bᵀ, dB = Aᵀ·G); patchify convolutions (SOFT landmarks, spatial reduction) are such matmuls; a stride-1 depthwise conv costs 2× too (dX and dW convolutions of the same size). Strided non-patchify convolutions (a stem) would cost more — none is in an attention or block.',
  );
  process.exit(0);
}
void main();
