/**
 * The VS Code side, wiring only: starts the language server (language-client.ts) and registers
 * the commands its CodeLenses reference (commands/, one file per group). No model arithmetic
 * and no config parsing here: every figure, the dashboard's data included, comes from the
 * server, and the dashboard (client/dashboard.ts) only shows it.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { DASHBOARD_VIEW_TYPE, type DashboardView } from '../protocol/dashboard';
import { Commands } from '../protocol/lsp';
import { registerApproxCommands } from './commands/approx';
import { registerBenchmarkCommands } from './commands/benchmark';
import type { CommandContext } from './commands/context';
import { registerDeviceCommands } from './commands/devices';
import { registerGradCommands } from './commands/grad';
import { registerInferenceCommands } from './commands/inference';
import { registerPinvCommands } from './commands/pinv';
import { registerProfileCommands } from './commands/profile';
import { DashboardPanel, type DashboardHandlers } from './dashboard';
import { createLanguageClient } from './language-client';
import { forwardPythonInterpreter } from './python';
import { forwardTrust } from './trust';

let client: LanguageClient | undefined;

/** The command behind each dashboard view (its Run again button). */
const RERUN: Record<DashboardView, string> = {
  profile: Commands.showProfile,
  bench: Commands.benchmark,
  pinv: Commands.pinv,
  approx: Commands.approx,
  infer: Commands.infer,
  grad: Commands.grad,
};

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const lc = (client = createLanguageClient(context));
  const handlers: DashboardHandlers = {
    // A benchmark re-runs in the mode the view shows, with the same training settings.
    rerun: (view, source, bench) =>
      void (view === 'bench' && bench?.train
        ? vscode.commands.executeCommand(Commands.benchmarkTraining, source, bench)
        : vscode.commands.executeCommand(RERUN[view], source)),
  };
  const ctx: CommandContext = {
    extensionContext: context,
    client: lc,
    panel: () => DashboardPanel.show(context.extensionUri, handlers),
  };
  const devices = registerDeviceCommands(ctx);

  context.subscriptions.push(
    ...registerProfileCommands(ctx),
    ...registerBenchmarkCommands(ctx),
    ...registerPinvCommands(ctx),
    ...registerApproxCommands(ctx),
    ...registerInferenceCommands(ctx),
    ...registerGradCommands(ctx),
    ...devices.disposables,
    forwardTrust(lc),
    vscode.window.registerWebviewPanelSerializer(DASHBOARD_VIEW_TYPE, {
      deserializeWebviewPanel: async (webviewPanel) =>
        DashboardPanel.revive(webviewPanel, context.extensionUri, handlers),
    }),
  );
  await lc.start();
  context.subscriptions.push(await forwardPythonInterpreter(lc));
  void devices.status.refresh();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
