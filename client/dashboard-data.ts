/**
 * A config's dashboard data, asked of the server (`vitlens/dashboard`, built by the same code as
 * the CLI's HTML report) with the results the open panel already shows for the same config.
 */
import * as vscode from 'vscode';
import type { DashboardData, DashboardView } from '../protocol/dashboard';
import { DashboardRequest } from '../protocol/lsp';
import type { CommandContext } from './commands/context';
import { DashboardPanel } from './dashboard';

/** Profile + sweep of a config, merged with what the panel already shows for it; null (and a warning) when it has errors. */
export async function dashboardData(
  ctx: CommandContext,
  uri: string,
  view: DashboardView,
): Promise<DashboardData | null> {
  const resolutions = vscode.workspace.getConfiguration('vitlens').get<number[]>('profile.resolutions');
  const shown = DashboardPanel.open()?.shown;
  const same = shown?.source === uri ? shown : null;
  const data = await ctx.client.sendRequest(DashboardRequest, {
    uri,
    view,
    producer: `ViT Lens ${ctx.extensionContext.extension.packageJSON.version} VS Code extension`,
    label: vscode.workspace.asRelativePath(vscode.Uri.parse(uri)),
    ...(resolutions?.length ? { sweepResolutions: resolutions } : {}),
    bench: same?.bench ?? null,
    pinv: same?.pinv ?? null,
    infer: same?.infer ?? null,
    approx: same?.approx ?? null,
    grad: same?.grad ?? null,
  });
  if (!data)
    void vscode.window.showWarningMessage('ViT Lens: this config has errors (see Problems), so it cannot be profiled.');
  return data;
}
