/**
 * Regenerates fixtures/results/soft_tiny-mixed-pinv.json, the pseudo-inverse report of soft_tiny
 * with SOFT and Nyströmformer stages, which the webview test draws beside the dashboard fixture:
 *   node --import tsx scripts/make-pinv-fixture.ts
 * It is what `vitlens pinv <that config> --resolution 128 --iterations 40 --json` prints: traced
 * past both configured counts (newton_maxiter 20, nystrom_iterations 6), so the charts show where
 * Nyström's 6 iterations stop and where its slowest mode gets to.
 */
import fs from 'node:fs';
import { analyzeConfig } from '../server/core/config/analyze';
import { analysePinv } from '../server/jobs/pinv';

const CONFIG = 'model: soft_tiny\nattention: [soft, nystrom, soft, softmax]\n';
const OUT = 'fixtures/results/soft_tiny-mixed-pinv.json';
const spec = analyzeConfig(CONFIG).spec!;
const pinv = analysePinv(spec, { resolution: 128, iterations: 40 });
fs.mkdirSync('fixtures/results', { recursive: true });
fs.writeFileSync(OUT, JSON.stringify(pinv));
console.log(`wrote ${OUT} (${pinv.summary})`);
