/**
 * Regenerates fixtures/results/soft_tiny-dashboard.json, the dashboard data the webview and
 * report tests load: profile + sweep + pinv computed here, the benchmark taken from a
 * finished `vitlens bench … --out FILE` run (a real run on this machine, not made up).
 *   node --import tsx scripts/make-dashboard-fixture.ts <bench.json>
 */
import fs from 'node:fs';
import { analyzeConfig } from '../server/core/config/analyze';
import { analysePinv } from '../server/jobs/pinv';
import { dashboardData } from '../server/report/data';
import { formatBytes } from '../protocol/format';
import type { BenchReport } from '../protocol/results';

const config = 'fixtures/configs/soft/SOFT_Tiny.yaml';
const benchFile = process.argv[2];
if (!benchFile) throw new Error('usage: make-dashboard-fixture.ts <bench.json from vitlens bench --out>');
const spec = analyzeConfig(fs.readFileSync(config, 'utf8')).spec!;
const bench = JSON.parse(fs.readFileSync(benchFile, 'utf8')) as BenchReport;
const pinv = analysePinv(spec, { resolution: 224 });
const data = dashboardData({ spec, source: config, producer: 'ViT Lens 0.1.0 CLI', bench, pinv, view: 'bench' });
fs.mkdirSync('fixtures/results', { recursive: true });
fs.writeFileSync('fixtures/results/soft_tiny-dashboard.json', JSON.stringify(data));
console.log(
  `wrote fixtures/results/soft_tiny-dashboard.json (${formatBytes(fs.statSync('fixtures/results/soft_tiny-dashboard.json').size, { decimals: 0, smallest: 'KiB', largest: 'KiB' })})`,
);
