/** "Show profile dashboard": the dashboard's profile view of a config. */
import * as vscode from 'vscode';
import { Commands } from '../../protocol/lsp';
import { targetUri } from '../config-target';
import { dashboardData } from '../dashboard-data';
import type { CommandContext } from './context';

export function registerProfileCommands(ctx: CommandContext): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(Commands.showProfile, async (uri?: string | vscode.Uri) => {
      const target = targetUri(uri);
      if (!target) return;
      const data = await dashboardData(ctx, target, 'profile');
      if (data) ctx.panel().setData(data);
    }),
  ];
}
