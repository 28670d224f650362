/**
 * `vitlens/grad`: one training step's gradients of a config's model (loss, per-parameter gradient
 * norms, input gradient, warnings) in a worker process, on the config's checkpoint and images
 * unless the request names others (resolved as `vitlens/infer` resolves them).
 */
import { ErrorCodes, ResponseError } from 'vscode-languageserver/node';
import { GradRequest, type GradParams } from '../../../protocol/lsp';
import type { ServerContext } from '../context';

export function registerGradHandlers({ connection, configs, settings, trust, jobs }: ServerContext): void {
  connection.onRequest(GradRequest, async (p: GradParams, token) => {
    trust.refuseUntrusted('The gradient analysis');
    const model = configs.spec(p.uri);
    const s = (await settings.get(p.uri)).infer;
    // The config's own paths are relative to it; paths in the request are absolute (from the editor).
    const fromConfig = configs.inputs(p.uri, s.checkpointSearchPaths)!;
    const checkpoint = p.checkpoint !== undefined ? p.checkpoint : fromConfig.checkpoint;
    const images = p.images ?? fromConfig.images;
    if (!images.length)
      throw new ResponseError(
        ErrorCodes.InvalidParams,
        `${p.uri}: no images given and the config lists none under images:`,
      );
    if (!Array.isArray(p.labels) || !p.labels.length)
      throw new ResponseError(ErrorCodes.InvalidParams, `${p.uri}: labels: give the class of the cross-entropy`);
    return jobs.run(
      p.uri,
      {
        kind: 'grad' as const,
        python: await settings.python(p.uri),
        model,
        config: p.uri,
        checkpoint,
        images,
        labels: p.labels,
        ...(p.resolution ? { resolution: p.resolution } : {}),
        ...(p.resize ? { resize: p.resize } : {}),
        ...(p.mode ? { mode: p.mode } : {}),
        ...(p.newtonBackward ? { newtonBackward: p.newtonBackward } : {}),
        ...(p.runtime ? { runtime: p.runtime } : {}),
      },
      token,
    );
  });
}
