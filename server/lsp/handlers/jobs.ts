/**
 * `vitlens/bench`, `vitlens/pinv` and `vitlens/devices`: jobs that run in a worker process
 * (job-runner.ts). Bench and pinv run a model, so an untrusted workspace is refused them.
 */
import { BenchRequest, DevicesRequest, PinvRequest, type BenchParams, type PinvParams } from '../../../protocol/lsp';
import { pickBestBackend } from '../../runtimes/ranking';
import type { ServerContext } from '../context';

export function registerJobHandlers({ connection, configs, settings, trust, jobs }: ServerContext): void {
  connection.onRequest(BenchRequest, async (p: BenchParams, token) => {
    trust.refuseUntrusted('A benchmark');
    const model = configs.spec(p.uri);
    const s = (await settings.get(p.uri)).bench;
    const { uri: _uri, attentions, ...rest } = p;
    // The request's own choices win; the user's settings fill the rest.
    const fromSettings = {
      ...(s.backends.length ? { runtimes: s.backends } : {}),
      ...(s.budgetMs ? { budgetMs: s.budgetMs } : {}),
      scaling: s.scaling,
    };
    return jobs.run(
      p.uri,
      {
        kind: 'bench' as const,
        model,
        config: p.uri,
        ...fromSettings,
        ...rest,
        ...(attentions ? { attentions: attentions as never } : {}),
        processStartedAt: Date.now(),
        python: await settings.python(p.uri),
      },
      token,
    );
  });
  connection.onRequest(PinvRequest, async (p: PinvParams, token) => {
    trust.refuseUntrusted('The pseudo-inverse analysis');
    const model = configs.spec(p.uri);
    return jobs.run(
      p.uri,
      {
        kind: 'pinv' as const,
        model,
        resolution: p.resolution ?? model.resolutions[0] ?? 224,
        ...(p.arithmetic ? { dtype: p.arithmetic } : {}),
        ...(p.iterations !== undefined ? { iterations: p.iterations } : {}),
        ...(p.seed !== undefined ? { seed: p.seed } : {}),
      },
      token,
    );
  });
  connection.onRequest(DevicesRequest, async (_p, token) => {
    const report = await jobs.run(null, { kind: 'devices' as const, python: await settings.python(null) }, token);
    return { ...report, backends: pickBestBackend(report) };
  });
}
