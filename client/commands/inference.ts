/**
 * "Run inference on image…" (a config's images, or picked ones) and the Explorer's "Run ViT Lens
 * inference on selected images" (through a config the user picks). Results go to the dashboard,
 * whose clicks on an image ask for the attention maps of another query token.
 */
import * as vscode from 'vscode';
import { Commands, ConfigInputsRequest, InferRequest, type InferParams } from '../../protocol/lsp';
import { pickConfig, targetUri } from '../config-target';
import { dashboardData } from '../dashboard-data';
import { requireTrust } from '../trust';
import type { CommandContext } from './context';

/** Images (given, or the config's `images:`, or picked) through the config's model; results in the dashboard. */
async function runInference(ctx: CommandContext, config: string, images: string[] | undefined): Promise<void> {
  const lc = ctx.client;
  const params: InferParams = { uri: config, maps: { point: null } };
  if (images) params.images = images;
  await vscode.workspace.openTextDocument(vscode.Uri.parse(config)); // the server answers for open documents
  // What the config names, as the server resolves it (the same resolution as the CLI's).
  const named = await lc.sendRequest(ConfigInputsRequest, { uri: config });
  if (!images && !named?.images.length) {
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: true,
      filters: { Images: ['png', 'jpg', 'jpeg', 'webp'] },
      title: 'ViT Lens: images to run',
    });
    if (!picked?.length) return;
    params.images = picked.map((u) => u.fsPath);
  }
  if (!named?.checkpoint) {
    const choice = await vscode.window.showQuickPick(
      ['Choose a checkpoint (.pth, .safetensors)…', 'Random weights (timing and maps only; predictions mean nothing)'],
      { title: 'ViT Lens: the config names no checkpoint' },
    );
    if (!choice) return;
    if (choice.startsWith('Random')) params.checkpoint = null;
    else {
      const file = await vscode.window.showOpenDialog({
        filters: { Checkpoints: ['pth', 'pt', 'bin', 'safetensors'] },
        title: 'ViT Lens: checkpoint',
      });
      if (!file?.[0]) return;
      params.checkpoint = file[0].fsPath;
    }
  }
  const data = await dashboardData(ctx, config, 'infer');
  if (!data) return;
  const p = ctx.panel();
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'ViT Lens: running inference', cancellable: true },
    async (_progress, token) => {
      try {
        data.infer = await lc.sendRequest(InferRequest, params, token);
        p.setData(data);
        // The page's clicks on an image ask for the maps of another query token.
        p.onAttentionQuery(async (item, point) => {
          const image = data.infer?.items[item]?.name;
          if (!image) return;
          try {
            const again = await lc.sendRequest(InferRequest, { ...params, images: [image], maps: { point } });
            await p.post({ type: 'attentionMaps', item, maps: again.items[0]?.maps ?? [] });
          } catch (e) {
            await p.post({ type: 'attentionMaps', item, maps: [], error: (e as Error).message });
          }
        });
      } catch (e) {
        if (!token.isCancellationRequested)
          void vscode.window.showErrorMessage(`ViT Lens: inference failed: ${(e as Error).message}`);
      }
    },
  );
}

export function registerInferenceCommands(ctx: CommandContext): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(Commands.infer, async (uri?: string | vscode.Uri) => {
      const target = targetUri(uri);
      if (target && requireTrust('Inference')) await runInference(ctx, target, undefined);
    }),

    // Explorer: the clicked image, or every selected one, through a config's model.
    vscode.commands.registerCommand(Commands.inferImages, async (clicked?: vscode.Uri, selected?: vscode.Uri[]) => {
      const images = (selected?.length ? selected : clicked ? [clicked] : []).map((u) => u.fsPath);
      if (!images.length || !requireTrust('Inference')) return;
      const config = await pickConfig();
      if (config) await runInference(ctx, config, images);
    }),
  ];
}
