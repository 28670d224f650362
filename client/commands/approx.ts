/**
 * "Approximation quality": each approximate attention's error against its MACs on a config's own
 * model (`vitlens/approx`, in the server's worker), in the dashboard. The analysis reports steps
 * rather than a known total, so the notification shows what runs; cancelling it kills the worker.
 */
import * as vscode from 'vscode';
import { ApproxRequest, Commands, ProgressNotification } from '../../protocol/lsp';
import { targetUri } from '../config-target';
import { dashboardData } from '../dashboard-data';
import { requireTrust } from '../trust';
import type { CommandContext } from './context';

export function registerApproxCommands(ctx: CommandContext): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(Commands.approx, async (uri?: string | vscode.Uri) => {
      const target = targetUri(uri);
      if (!target || !requireTrust('The approximation analysis')) return;
      const data = await dashboardData(ctx, target, 'approx');
      if (!data) return;
      const p = ctx.panel();
      await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: 'ViT Lens: approximation quality',
          cancellable: true,
        },
        async (progress, token) => {
          const sub = ctx.client.onNotification(ProgressNotification, (n) => {
            if (n.uri === target && n.job === 'approx') progress.report({ message: n.message });
          });
          try {
            data.approx = await ctx.client.sendRequest(ApproxRequest, { uri: target }, token);
            p.setData(data);
          } catch (e) {
            if (!token.isCancellationRequested)
              void vscode.window.showErrorMessage(`ViT Lens: approximation analysis failed: ${(e as Error).message}`);
          } finally {
            sub.dispose();
          }
        },
      );
    }),
  ];
}
