/**
 * Soak: the config fuzzer of test/fuzz.test.ts for longer, against one bundled server over a
 * real LSP connection. Prints the same figures (documents, mutation kinds, diagnostics latency,
 * hover/codeLens latency, the server's RSS after each close-all round and its peak) and exits
 * non-zero on any failure.
 *
 *   npm run build && node --import tsx scripts/soak-fuzz.ts [--documents 200000] [--seed 1] [--lanes 4]
 */
import os from 'node:os';
import { formatBytes, formatMs } from '../protocol/format';
import { formatFuzzResult, fuzzServer, percentile } from '../test/helpers/mutate';
import { numberOption, requireBuiltServer } from '../test/helpers/script-args';

async function main(): Promise<void> {
  requireBuiltServer();
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const documents = numberOption('documents', 200_000);
  const seed = numberOption('seed', 1);
  const lanes = numberOption('lanes', 4);
  console.log(`ViT Lens config soak: ${documents} documents, seed ${seed}, ${lanes} lanes`);
  console.log(
    `  node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${formatBytes(os.totalmem(), { decimals: 0, smallest: 'GiB', largest: 'GiB' })}`,
  );
  const r = await fuzzServer({
    seed,
    documents,
    lanes,
    closeEvery: Math.max(1000, Math.round(documents / 40)),
    log: (l) => console.log(l),
  });
  for (const line of formatFuzzResult(r)) console.log(line);
  const lat = r.diagnosticsLatencyMs.filter(Number.isFinite);
  console.log(
    `  p90 ${formatMs(percentile(lat, 0.9), { unit: 'ms', decimals: 1 })}, p999 ${formatMs(percentile(lat, 0.999), { unit: 'ms', decimals: 1 })}`,
  );
  for (const f of r.failures.slice(0, 50)) console.log(`FAILURE ${f.what}: ${f.detail}`);
  for (const e of r.serverErrors.slice(0, 10)) console.log(`SERVER ERROR ${e}`);
  if (r.failures.length || r.serverErrors.length || !r.serverAlive) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
