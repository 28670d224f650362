/**
 * Speed target of the harness (issue 3): SOFT stage-1 attention of soft_tiny at 224
 * (N = 3136, D = 64, 2 heads, m = 49, 20 Newton iterations, batch 1) on the best CPU backend
 * vs the same maths in PyTorch eager on the same cores, in one run, as a ratio.
 * Needs Debian's python3-torch (OpenBLAS): `node --import tsx scripts/perf/soft-vs-pytorch.ts [--threads N]`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { analyzeConfig } from '../../server/core/config/analyze';
import { probeDevices } from '../../server/runtimes/probe';
import { runBenchmark } from '../../server/jobs/bench/harness';

async function main() {
  const threads = Number(process.argv[process.argv.indexOf('--threads') + 1]) || os.availableParallelism();
  const spec = analyzeConfig(
    fs.readFileSync(path.join(__dirname, '..', '..', 'fixtures', 'configs', 'soft', 'SOFT_Tiny.yaml'), 'utf8'),
  ).spec!;
  const report = await probeDevices({ webgpu: false });
  const ours = await runBenchmark(
    {
      model: spec,
      config: 'SOFT_Tiny.yaml',
      runtimes: ['ort-cpu'],
      stages: [1],
      attentions: ['soft'],
      levels: ['attention'],
      scaling: false,
      budgetMs: 4000,
    },
    report,
  );
  const c = ours.cases[0]!;
  const out = path.join(os.tmpdir(), `vitlens-torch-${process.pid}.json`);
  execFileSync(
    '/usr/bin/python3',
    [
      path.join(__dirname, 'pytorch-baseline.py'),
      '--attention',
      'soft',
      '--tokens',
      '3136',
      '--dim',
      '64',
      '--heads',
      '2',
      '--ratio',
      '8',
      '--conv',
      '9',
      '--newton-iters',
      '20',
      '--distance',
      'expanded',
      '--threads',
      String(threads),
      '--quiet-config',
      '--json',
      out,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const torch = JSON.parse(fs.readFileSync(out, 'utf8'));
  fs.rmSync(out, { force: true });
  const t = (torch.results ?? [torch])[0];
  const tm: number = t.ms.median;
  console.log(
    `ViT Lens ${c.runtime} (${ours.runtimes[0]!.device}): median ${c.timingMs!.median.toFixed(2)} ms, p10 ${c.timingMs!.p10.toFixed(2)}, p90 ${c.timingMs!.p90.toFixed(2)} (n=${c.timingMs!.n})`,
  );
  console.log(`PyTorch eager (${threads} threads): median ${Number(tm).toFixed(2)} ms`);
  console.log(`ratio PyTorch / ViT Lens = ${(tm / c.timingMs!.median).toFixed(2)}× (target ≥ 2)`);
  process.exit(0);
}
void main();
