/**
 * `vitlens/infer` (a config's model on images, in a worker process) and `vitlens/configInputs`
 * (the checkpoint and images a config names, resolved here so the client parses no YAML).
 * Finished runs are remembered for the hover on `images:` entries (image-results.ts).
 */
import { ErrorCodes, ResponseError } from 'vscode-languageserver/node';
import { ConfigInputsRequest, InferRequest, type InferParams } from '../../../protocol/lsp';
import type { RuntimeId } from '../../../protocol/results';
import type { ServerContext } from '../context';

export function registerInferHandlers({
  connection,
  configs,
  settings,
  trust,
  guard,
  jobs,
  imageResults,
}: ServerContext): void {
  connection.onRequest(ConfigInputsRequest, async (p) => {
    const searchPaths = (await settings.get(p.uri)).infer.checkpointSearchPaths;
    return guard('configInputs', null, () => configs.inputs(p.uri, searchPaths));
  });
  connection.onRequest(InferRequest, async (p: InferParams, token) => {
    trust.refuseUntrusted('Inference');
    const model = configs.spec(p.uri);
    const s = (await settings.get(p.uri)).infer;
    // The config's own paths are relative to it (the one resolution the CLI uses too); paths in
    // the request are absolute (from the editor).
    const fromConfig = configs.inputs(p.uri, s.checkpointSearchPaths)!;
    const checkpoint = p.checkpoint !== undefined ? p.checkpoint : fromConfig.checkpoint;
    const images = p.images ?? fromConfig.images;
    if (!images.length)
      throw new ResponseError(
        ErrorCodes.InvalidParams,
        `${p.uri}: no images given and the config lists none under images:`,
      );
    const report = await jobs.run(
      p.uri,
      {
        kind: 'infer' as const,
        python: await settings.python(p.uri),
        model,
        config: p.uri,
        checkpoint,
        images,
        ...(p.resolution ? { resolution: p.resolution } : {}),
        ...(p.resize ? { resize: p.resize } : {}),
        ...(p.runtime || s.backend ? { runtime: (p.runtime || s.backend) as RuntimeId } : {}),
        ...(p.maps ? { maps: p.maps } : {}),
      },
      token,
    );
    // Remembered for the hover on `images:` entries (latest run of each image wins).
    imageResults.remember(report);
    return report;
  });
}
