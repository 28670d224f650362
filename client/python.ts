/**
 * The interpreter selected in VS Code's Python extension (ms-python.python), forwarded to the
 * server: it is where a researcher's torch lives, so the PyTorch runtime uses it unless the
 * `vitlens.python.path` setting names another. Read through the extension's public API
 * (`environments.getActiveEnvironmentPath`), again whenever the user picks another interpreter.
 * Without the extension nothing is sent and the server searches PATH.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { PythonInterpreterNotification } from '../protocol/lsp';

/** The part of the Python extension's API used here. */
interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
    onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
  };
}

const PYTHON_EXTENSION_ID = 'ms-python.python';

/** Sends the current interpreter now and on every change; the disposable stops listening. */
export async function forwardPythonInterpreter(client: LanguageClient): Promise<vscode.Disposable> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION_ID);
  if (!extension) return new vscode.Disposable(() => {});
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    const environments = api?.environments;
    if (!environments) return new vscode.Disposable(() => {});
    const send = () =>
      void client.sendNotification(PythonInterpreterNotification, {
        executable: environments.getActiveEnvironmentPath()?.path || null,
      });
    send();
    return environments.onDidChangeActiveEnvironmentPath?.(send) ?? new vscode.Disposable(() => {});
  } catch (e) {
    // An old or broken Python extension: the server falls back to PATH, and the log says why.
    client.warn(`ViT Lens: could not ask the Python extension for its interpreter: ${String(e)}`);
    return new vscode.Disposable(() => {});
  }
}
