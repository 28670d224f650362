/** What every command needs: the extension, the language client, and the dashboard panel. */
import type * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import type { DashboardPanel } from '../dashboard';

export interface CommandContext {
  extensionContext: vscode.ExtensionContext;
  client: LanguageClient;
  /** The dashboard panel, revealed, or a new one beside the editor. */
  panel(): DashboardPanel;
}
