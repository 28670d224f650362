/**
 * Workspace trust on the client side: the server runs no model in an untrusted workspace, so
 * the commands that would ask it to say so first, and the server hears when trust is granted.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { TrustNotification } from '../protocol/lsp';

/** Model execution needs a trusted workspace; say so instead of sending a request that will be refused. */
export function requireTrust(what: string): boolean {
  if (vscode.workspace.isTrusted) return true;
  void vscode.window
    .showWarningMessage(
      `ViT Lens: ${what} runs a model, which needs a trusted workspace. Profiles and diagnostics work without trust.`,
      'Manage Workspace Trust',
    )
    .then((b) => {
      if (b) void vscode.commands.executeCommand('workbench.trust.manage');
    });
  return false;
}

/** Tells the server when the user trusts the workspace (its run lenses appear). */
export function forwardTrust(client: LanguageClient): vscode.Disposable {
  return vscode.workspace.onDidGrantWorkspaceTrust(
    () => void client.sendNotification(TrustNotification, { trusted: true }),
  );
}
