/** Which config a command is about: the one it was given, the active editor's, or one the user picks. */
import * as vscode from 'vscode';
import { Commands } from '../protocol/lsp';

/** The config a command was given (a CodeLens passes its URI), else the active editor's document. */
export function targetUri(uri?: string | vscode.Uri): string | undefined {
  return uri ? uri.toString() : vscode.window.activeTextEditor?.document.uri.toString();
}

/** The active config (a YAML file the server treats as one: it has our lenses), or one picked from the workspace's. */
export async function pickConfig(): Promise<string | undefined> {
  const active = vscode.window.activeTextEditor?.document;
  if (active?.languageId === 'yaml') {
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>(
      'vscode.executeCodeLensProvider',
      active.uri,
    );
    if (lenses?.some((l) => l.command?.command === Commands.showProfile)) return active.uri.toString();
  }
  const files = await vscode.workspace.findFiles(
    '**/{SOFT_*.yaml,*.vitlens.yaml,*.vitlens.yml,vitlens*.yaml}',
    '**/node_modules/**',
    200,
  );
  const pick = await vscode.window.showQuickPick(
    files.map((f) => ({ label: vscode.workspace.asRelativePath(f), uri: f })),
    { title: 'ViT Lens: which model config runs these images?' },
  );
  if (!pick) return undefined;
  await vscode.workspace.openTextDocument(pick.uri); // the server analyses open documents
  return pick.uri.toString();
}
