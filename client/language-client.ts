/**
 * The language client: starts the language server (dist/server.js) in its own Node process,
 * over IPC, for every YAML document (the server decides which ones are ViT Lens configs).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  LanguageClient,
  TransportKind,
  type LanguageClientOptions,
  type ServerOptions,
} from 'vscode-languageclient/node';

export function createLanguageClient(context: vscode.ExtensionContext): LanguageClient {
  const module = context.asAbsolutePath(path.join('dist', 'server.js'));
  // A Node.js of the user's choosing may run the server (and so its workers); default VS Code's.
  const runtime = vscode.workspace.getConfiguration('vitlens').get<string>('server.runtime') || undefined;
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc, ...(runtime ? { runtime } : {}) },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6009'] } },
  };
  const clientOptions: LanguageClientOptions = {
    // The server decides which YAML files are ViT Lens configs (by name or by their keys).
    documentSelector: [
      { language: 'yaml', scheme: 'file' },
      { language: 'yaml', scheme: 'untitled' },
    ],
    outputChannelName: 'ViT Lens',
    // The server runs no model in an untrusted workspace (vitlens/trust tells it when that changes).
    initializationOptions: { trusted: vscode.workspace.isTrusted },
    // So the server hears when a `vitlens.*` setting changes (vitlens.gpuMemory is in the summary lens).
    synchronize: { configurationSection: 'vitlens' },
  };
  return new LanguageClient('vitlens', 'ViT Lens', serverOptions, clientOptions);
}
