/**
 * Speed target of the comparison attentions (issue 16): Performer, Nyströmformer and Linformer
 * on ORT CPU against the same maths in PyTorch eager on the same cores, in one run, as ratios.
 * "The same maths": the harness runs one graph per case on both runtimes — ORT gets its ONNX
 * lowering, PyTorch the torch lowering executed op by op by torch in the user's Python
 * (vitlens_torch.py, timed inside Python) — so the ratio compares the runtimes, not two
 * implementations. soft_tiny at 224, stages 1–3 (N = 3136, 784, 196), attention layers, batch 1.
 *
 *   node --import tsx scripts/perf/comparison-vs-pytorch.ts [--budget-ms 3000] [--python /usr/bin/python3]
 */
import fs from 'node:fs';
import path from 'node:path';
import { analyzeConfig } from '../../server/core/config/analyze';
import { runBenchmark } from '../../server/jobs/bench/harness';
import { probeDevices } from '../../server/runtimes/probe';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main() {
  const budgetMs = Number(flag('--budget-ms')) || 3000;
  const spec = analyzeConfig(
    fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'configs', 'soft', 'SOFT_Tiny.yaml'), 'utf8'),
  ).spec!;
  const report = await probeDevices({ webgpu: false, pytorch: { python: flag('--python') ?? null } });
  if (!report.pytorch.available) throw new Error(`no PyTorch: ${report.pytorch.reason}`);
  const bench = await runBenchmark(
    {
      model: spec,
      config: 'SOFT_Tiny.yaml',
      runtimes: ['ort-cpu', 'torch-cpu'],
      stages: [1, 2, 3],
      attentions: ['performer', 'nystrom', 'linformer'],
      levels: ['attention'],
      scaling: false,
      budgetMs,
      limits: false,
    },
    report,
  );
  for (const r of bench.runtimes) console.log(`${r.id}: ${r.runtime} on ${r.device}`);
  console.log(
    '\nstage  attention   tokens  setting                                       ORT ms (p10–p90)      PyTorch ms (p10–p90)  PyTorch/ORT',
  );
  const ratios: number[] = [];
  for (const ort of bench.cases.filter((c) => c.runtime === 'ort-cpu' && c.status === 'ok')) {
    const torch = bench.cases.find(
      (c) => c.runtime === 'torch-cpu' && c.stage === ort.stage && c.attention === ort.attention && c.status === 'ok',
    );
    if (!torch) continue;
    const o = ort.timingMs!;
    const t = torch.timingMs!;
    const ratio = t.median / o.median;
    ratios.push(ratio);
    console.log(
      `${String(ort.stage).padEnd(6)} ${ort.attention.padEnd(11)} ${String(ort.tokens).padStart(6)}  ${(ort.setting ?? '').padEnd(48)} ${o.median.toFixed(2).padStart(7)} (${o.p10.toFixed(2)}–${o.p90.toFixed(2)})`.padEnd(
        100,
      ) +
        ` ${t.median.toFixed(2).padStart(7)} (${t.p10.toFixed(2)}–${t.p90.toFixed(2)})`.padEnd(24) +
        ` ${ratio.toFixed(2)}×`,
    );
  }
  const worst = Math.min(...ratios);
  console.log(
    `\nworst PyTorch/ORT ratio ${worst.toFixed(2)}× (target: ORT within 1.5× of PyTorch or faster, i.e. every ratio ≥ ${(1 / 1.5).toFixed(2)})`,
  );
  process.exit(0);
}
void main();
