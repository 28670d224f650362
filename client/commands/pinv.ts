/** "Pseudo-inverse convergence": Newton–Raphson convergence of a config's SOFT stages, in the dashboard. */
import * as vscode from 'vscode';
import { Commands, PinvRequest } from '../../protocol/lsp';
import { targetUri } from '../config-target';
import { dashboardData } from '../dashboard-data';
import { requireTrust } from '../trust';
import type { CommandContext } from './context';

export function registerPinvCommands(ctx: CommandContext): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(Commands.pinv, async (uri?: string | vscode.Uri) => {
      const target = targetUri(uri);
      if (!target || !requireTrust('The pseudo-inverse analysis')) return;
      const data = await dashboardData(ctx, target, 'pinv');
      if (!data) return;
      const p = ctx.panel();
      await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: 'ViT Lens: pseudo-inverse convergence',
          cancellable: true,
        },
        async (_progress, token) => {
          try {
            data.pinv = await ctx.client.sendRequest(PinvRequest, { uri: target }, token);
            p.setData(data);
          } catch (e) {
            if (!token.isCancellationRequested)
              void vscode.window.showErrorMessage(`ViT Lens: pseudo-inverse analysis failed: ${(e as Error).message}`);
          }
        },
      );
    }),
  ];
}
