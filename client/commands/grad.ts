/**
 * "Gradient norms (one training step)" (and the "Gradients" CodeLens): the loss against a class the
 * user gives, and every parameter's gradient norm with its warnings (computed by the server's
 * `vitlens/grad` in a worker), in the dashboard's Gradients view; the same report as text in an
 * output channel. Cancelling the notification kills the worker.
 */
import * as vscode from 'vscode';
import { gradText } from '../../protocol/grad';
import { Commands, ConfigInputsRequest, GradRequest, ProgressNotification, type GradParams } from '../../protocol/lsp';
import { targetUri } from '../config-target';
import { dashboardData } from '../dashboard-data';
import { requireTrust } from '../trust';
import type { CommandContext } from './context';

export function registerGradCommands(ctx: CommandContext): vscode.Disposable[] {
  const channel = vscode.window.createOutputChannel('ViT Lens: gradients');
  /** The labels last given per config, offered again (the panel's "Compute again" asks anew). */
  const lastLabels = new Map<string, string>();
  return [
    channel,
    vscode.commands.registerCommand(Commands.grad, async (uri?: string | vscode.Uri) => {
      const target = targetUri(uri);
      if (!target || !requireTrust('The gradient analysis')) return;
      await vscode.workspace.openTextDocument(vscode.Uri.parse(target)); // the server answers for open documents
      const label = await vscode.window.showInputBox({
        title: 'ViT Lens: the class the cross-entropy is taken against',
        prompt: 'Class index (one for every image, or comma-separated, one per image)',
        value: lastLabels.get(target) ?? '',
        validateInput: (v) => (/^\s*\d+(\s*,\s*\d+)*\s*$/.test(v) ? null : 'class indices: integers ≥ 0'),
      });
      if (label === undefined) return;
      lastLabels.set(target, label.trim());
      const params: GradParams = { uri: target, labels: label.split(',').map((s) => Number(s.trim())) };
      const named = await ctx.client.sendRequest(ConfigInputsRequest, { uri: target });
      if (!named?.images.length) {
        const picked = await vscode.window.showOpenDialog({
          canSelectMany: true,
          filters: { Images: ['png', 'jpg', 'jpeg', 'webp'] },
          title: 'ViT Lens: images for the gradient step',
        });
        if (!picked?.length) return;
        params.images = picked.map((u) => u.fsPath);
      }
      const data = await dashboardData(ctx, target, 'grad');
      if (!data) return;
      const p = ctx.panel();
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'ViT Lens: gradients', cancellable: true },
        async (progress, token) => {
          const sub = ctx.client.onNotification(ProgressNotification, (n) => {
            if (n.uri === target && n.job === 'grad') progress.report({ message: n.message });
          });
          try {
            const report = await ctx.client.sendRequest(GradRequest, params, token);
            data.grad = report;
            p.setData(data);
            channel.clear();
            channel.appendLine(gradText(report));
            if (report.warnings.length)
              void vscode.window
                .showWarningMessage(
                  `ViT Lens: ${report.warnings.length} gradient warning(s); see the dashboard's Gradients view.`,
                  'Show as text',
                )
                .then((choice) => choice && channel.show(true));
          } catch (e) {
            if (!token.isCancellationRequested)
              void vscode.window.showErrorMessage(`ViT Lens: gradient analysis failed: ${(e as Error).message}`);
          } finally {
            sub.dispose();
          }
        },
      );
    }),
  ];
}
