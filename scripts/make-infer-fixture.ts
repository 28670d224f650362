/**
 * Regenerates fixtures/results/tiny-infer-dashboard.json, the inference data the dashboard
 * tests load: the tiny official checkpoint (fixtures/ref/tiny_soft.pth, 10 classes) on two
 * real photographs at 64×64 through the timm transform, with each stage's attention maps from
 * the image centre — a real run of the inference pipeline on ORT CPU.
 *   node --import tsx scripts/make-infer-fixture.ts
 */
import fs from 'node:fs';
import { formatBytes } from '../protocol/format';
import { analyzeConfig } from '../server/core/config/analyze';
import { probeDevices } from '../server/runtimes/probe';
import { runInference } from '../server/jobs/infer/run';
import { dashboardData } from '../server/report/data';

const config = 'fixtures/configs/tiny_soft.vitlens.yaml';
const spec = analyzeConfig(fs.readFileSync(config, 'utf8')).spec!;
async function main(): Promise<void> {
  const infer = await runInference(
    {
      model: spec,
      config,
      checkpoint: 'fixtures/ref/tiny_soft.pth',
      images: ['fixtures/images/chelsea.png', 'fixtures/images/coffee.jpg'],
      runtime: 'ort-cpu',
      maps: { point: null },
    },
    () => probeDevices({ webgpu: false, pytorch: false }),
  );
  const data = dashboardData({ spec, source: config, producer: 'ViT Lens 0.1.0 CLI', infer, view: 'infer' });
  fs.writeFileSync('fixtures/results/tiny-infer-dashboard.json', JSON.stringify(data));
  console.log(
    `wrote fixtures/results/tiny-infer-dashboard.json (${formatBytes(fs.statSync('fixtures/results/tiny-infer-dashboard.json').size, { decimals: 0, smallest: 'KiB', largest: 'KiB' })})`,
  );
}

void main().then(() => process.exit(0));
