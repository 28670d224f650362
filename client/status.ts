/**
 * The status bar item: which backend a benchmark or inference runs on by default and on which
 * device, with software adapters flagged (their timings are not GPU performance). Clicking it
 * lists every backend the server found, best first, with the reason for its rank.
 */
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { formatBytes, WHOLE_MIB } from '../protocol/format';
import { Commands, DevicesRequest, type DevicesResult } from '../protocol/lsp';

export class DeviceStatus implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('vitlens.device', vscode.StatusBarAlignment.Right, 100);
  private devices: DevicesResult | null = null;

  constructor(private readonly client: LanguageClient) {
    this.item.name = 'ViT Lens device';
    this.item.command = Commands.showDevices;
    this.item.text = '$(sync~spin) ViT Lens: probing devices…';
    this.item.show();
  }

  /** Probes in the server's worker (Dawn and onnxruntime never load in the extension host). */
  async refresh(): Promise<void> {
    try {
      this.devices = await this.client.sendRequest(DevicesRequest, {});
      const best = this.devices.backends.find((b) => b.status === 'preferred' || b.status === 'runnable');
      const software = best?.adapter ? / software /.test(best.adapter) : false;
      const where = best?.adapter ?? (best?.backend === 'ort-cpu' ? `${this.devices.host.cores} CPU threads` : '');
      this.item.text = best
        ? `${software ? '$(warning)' : '$(chip)'} ViT Lens: ${best.backend}${where ? ` · ${shorten(where)}` : ''}`
        : '$(error) ViT Lens: no runtime';
      this.item.tooltip = best
        ? `Default backend ${best.backend}${best.adapter ? ` on ${best.adapter}` : ''}: ${best.reason}. Click for every backend found.`
        : 'No usable runtime was found. Click for details.';
      this.item.backgroundColor = software ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    } catch (e) {
      this.item.text = '$(error) ViT Lens: device probe failed';
      this.item.tooltip = (e as Error).message;
    }
  }

  /** The device list: backends best first, then adapters and GPUs. */
  async show(): Promise<void> {
    if (!this.devices) await this.refresh();
    const d = this.devices;
    if (!d) return;
    const items: vscode.QuickPickItem[] = [
      { label: 'Backends, best first', kind: vscode.QuickPickItemKind.Separator },
      ...d.backends.map((b) => ({
        label: `${b.status === 'preferred' ? '$(star-full)' : b.status === 'unavailable' ? '$(circle-slash)' : '$(circle-outline)'} ${b.backend}`,
        description: `${b.status}${b.adapter ? ` · ${b.adapter}` : ''}`,
        detail: b.reason,
      })),
      { label: 'Host and GPUs', kind: vscode.QuickPickItemKind.Separator },
      { label: `$(server) ${d.host.cpuModel}`, description: `${d.host.cores} threads`, detail: `node ${d.host.node}` },
      ...d.webgpu.adapters.map((a) => ({
        label: `$(circuit-board) WebGPU: ${a.device || a.description || a.vendor}`,
        description: a.software ? 'software adapter: CPU emulating a GPU' : 'hardware',
        detail: `maxStorageBufferBindingSize ${formatBytes(a.limits.maxStorageBufferBindingSize, { ...WHOLE_MIB, missing: 'unknown' })}`,
      })),
      ...(d.nvidia.available
        ? d.nvidia.gpus.map((g) => ({
            label: `$(circuit-board) ${g.name}`,
            description: `${g.memoryUsedMiB}/${g.memoryTotalMiB} MiB used`,
            detail: `driver ${g.driverVersion}`,
          }))
        : [{ label: '$(info) NVIDIA', description: d.nvidia.reason ?? 'none' }]),
      ...(d.gpuVisibility && !d.gpuVisibility.webgpuReachesIt
        ? [
            {
              label: '$(warning) WebGPU does not reach this GPU',
              description: d.gpuVisibility.fixes[0] ?? '',
              detail: d.gpuVisibility.diagnosis ?? '',
            },
          ]
        : []),
      d.pytorch.available && d.pytorch.torch && d.pytorch.python
        ? {
            label: `$(symbol-method) PyTorch ${d.pytorch.torch.version}`,
            description: d.pytorch.devices
              .map((x) => (x.kind === 'cpu' ? 'cpu' : `${x.kind}:${x.index} ${x.name}`))
              .join(', '),
            detail: `${d.pytorch.python.executable} (Python ${d.pytorch.python.version}, ${d.pytorch.python.source})`,
          }
        : { label: '$(info) PyTorch', description: d.pytorch.reason ?? 'none' },
      { label: '', kind: vscode.QuickPickItemKind.Separator },
      { label: '$(gear) Choose the backends in Settings…' },
    ];
    const pick = await vscode.window.showQuickPick(items, {
      title: 'ViT Lens: devices and runtimes found',
      matchOnDetail: true,
    });
    if (pick?.label.startsWith('$(gear)'))
      await vscode.commands.executeCommand('workbench.action.openSettings', 'vitlens.bench.backends');
  }

  dispose(): void {
    this.item.dispose();
  }
}

function shorten(s: string): string {
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}
