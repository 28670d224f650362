/**
 * `vitlens/bench`, `vitlens/pinv`, `vitlens/approx` and `vitlens/devices`: jobs that run in a worker
 * process (job-runner.ts). Bench, pinv and approx run a model, so an untrusted workspace is refused them.
 */
import { ErrorCodes, ResponseError } from 'vscode-languageserver/node';
import {
  ApproxRequest,
  BenchRequest,
  DevicesRequest,
  PinvRequest,
  type ApproxParams,
  type BenchParams,
  type PinvParams,
} from '../../../protocol/lsp';
import { NEWTON_BACKWARDS } from '../../core/models/spec';
import { pickBestBackend } from '../../runtimes/ranking';
import type { ServerContext } from '../context';

export function registerJobHandlers({ connection, configs, settings, trust, jobs }: ServerContext): void {
  connection.onRequest(BenchRequest, async (p: BenchParams, token) => {
    trust.refuseUntrusted('A benchmark');
    const model = configs.spec(p.uri);
    const s = (await settings.get(p.uri)).bench;
    const { uri: _uri, attentions, train, optimizer, newtonBackward, seed, ...rest } = p;
    if (!train && (optimizer || newtonBackward || seed !== undefined))
      throw new ResponseError(ErrorCodes.InvalidParams, 'optimizer, newtonBackward and seed are options of train.');
    if (optimizer && optimizer !== 'adamw')
      throw new ResponseError(ErrorCodes.InvalidParams, `optimizer ${String(optimizer)}: expected adamw or null.`);
    if (newtonBackward && !NEWTON_BACKWARDS.includes(newtonBackward))
      throw new ResponseError(
        ErrorCodes.InvalidParams,
        `newtonBackward ${String(newtonBackward)}: expected ${NEWTON_BACKWARDS.join(' or ')}.`,
      );
    if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed <= 2 ** 31))
      throw new ResponseError(ErrorCodes.InvalidParams, `seed ${String(seed)}: expected an integer from 0 to 2^31.`);
    // The request's own choices win; the user's settings fill the rest.
    const fromSettings = {
      ...(s.backends.length ? { runtimes: s.backends } : {}),
      ...(s.budgetMs ? { budgetMs: s.budgetMs } : {}),
      scaling: s.scaling,
    };
    // A training step's optimizer: the request's (null: none), else the setting.
    const trainOptions = train
      ? {
          train: {
            optimizer: optimizer !== undefined ? optimizer : s.optimizer === 'adamw' ? ('adamw' as const) : null,
            ...(newtonBackward ? { newtonBackward } : {}),
            ...(seed !== undefined ? { seed } : {}),
          },
        }
      : {};
    return jobs.run(
      p.uri,
      {
        kind: 'bench' as const,
        model,
        config: p.uri,
        ...fromSettings,
        ...rest,
        ...(attentions ? { attentions: attentions as never } : {}),
        ...trainOptions,
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
