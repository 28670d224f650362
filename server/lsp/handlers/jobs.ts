/**
 * `vitlens/bench`, `vitlens/pinv`, `vitlens/approx` and `vitlens/devices`: jobs that run in a worker
 * process (job-runner.ts). Bench, pinv and approx run a model, so an untrusted workspace is refused them.
 */
import {
  ApproxRequest,
  BenchRequest,
  DevicesRequest,
  PinvRequest,
  type ApproxParams,
  type BenchParams,
  type PinvParams,
} from '../../../protocol/lsp';
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
  connection.onRequest(ApproxRequest, async (p: ApproxParams, token) => {
    trust.refuseUntrusted('The approximation analysis');
    const model = configs.spec(p.uri);
    // The config's own paths are relative to it (resolved as inference resolves them); the request's are absolute.
    const fromConfig = configs.inputs(p.uri, (await settings.get(p.uri)).infer.checkpointSearchPaths)!;
    const { uri: _uri, checkpoint, image, ...rest } = p;
    return jobs.run(
      p.uri,
      {
        kind: 'approx' as const,
        model,
        config: p.uri,
        checkpoint: checkpoint !== undefined ? checkpoint : fromConfig.checkpoint,
        image: image !== undefined ? image : (fromConfig.images[0] ?? null),
        ...rest,
      },
      token,
    );
  });
  connection.onRequest(DevicesRequest, async (_p, token) => {
    const report = await jobs.run(null, { kind: 'devices' as const, python: await settings.python(null) }, token);
    return { ...report, backends: pickBestBackend(report) };
  });
}
