/** "Show devices and runtimes": the status bar item (client/status.ts) and its device list. */
import * as vscode from 'vscode';
import { Commands } from '../../protocol/lsp';
import { DeviceStatus } from '../status';
import type { CommandContext } from './context';

/** The status item (to refresh once the server is up) and what to dispose with the extension. */
export function registerDeviceCommands(ctx: CommandContext): {
  status: DeviceStatus;
  disposables: vscode.Disposable[];
} {
  const status = new DeviceStatus(ctx.client);
  return { status, disposables: [vscode.commands.registerCommand(Commands.showDevices, () => status.show()), status] };
}
