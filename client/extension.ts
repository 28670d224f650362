/**
 * The VS Code side: starts the language server in its own Node process (IPC) and
 * registers the commands its CodeLenses reference. No model arithmetic here.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { Commands, ProfileRequest } from '../protocol/lsp';

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const module = context.asAbsolutePath(path.join('dist', 'server.js'));
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6009'] } },
  };
  const clientOptions: LanguageClientOptions = {
    // The server decides which YAML files are ViT Lens configs (by name or by their keys).
    documentSelector: [{ language: 'yaml', scheme: 'file' }, { language: 'yaml', scheme: 'untitled' }],
    outputChannelName: 'ViT Lens',
  };
  client = new LanguageClient('vitlens', 'ViT Lens', serverOptions, clientOptions);

  context.subscriptions.push(
    vscode.commands.registerCommand(Commands.showProfile, async (uri?: string) => {
      const target = uri ?? vscode.window.activeTextEditor?.document.uri.toString();
      if (!target || !client) return;
      const profile = await client.sendRequest(ProfileRequest, { uri: target });
      if (!profile) {
        void vscode.window.showWarningMessage('ViT Lens: this config has errors (see Problems), so it cannot be profiled.');
        return;
      }
      const doc = await vscode.workspace.openTextDocument({ language: 'json', content: JSON.stringify(profile, null, 2) });
      await vscode.window.showTextDocument(doc, vscode.ViewColumn.Beside);
    }),
  );
  await client.start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
