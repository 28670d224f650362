/**
 * The dashboard webview panel: one per window, beside the editor. It loads the page bundle
 * (dist/webview.js + .css) under the page's CSP with a fresh nonce, relays host messages to
 * the page, and answers the page's requests (cancel, save a file, run again). The page keeps
 * its own state (setState), so a hidden panel costs nothing and a reload restores it through
 * the serializer registered in extension.ts.
 */
import * as vscode from 'vscode';
import {
  DASHBOARD_VIEW_TYPE,
  type DashboardData,
  type DashboardView,
  type HostMessage,
  type PageMessage,
} from '../protocol/dashboard';
import type { BenchRunOptions } from '../protocol/lsp';
import { dashboardHtml, makeNonce } from '../protocol/page';

export interface DashboardHandlers {
  /** The page's Run again button, for the view in front and the config it shows (a benchmark in the mode it shows). */
  rerun(view: DashboardView, source: string, bench?: BenchRunOptions): void;
}

export class DashboardPanel {
  private static current: DashboardPanel | undefined;
  private data: DashboardData | null = null;
  private cancel: (() => void) | null = null;
  private attentionQuery: ((item: number, point: { x: number; y: number }) => Promise<void>) | null = null;
  /** Messages sent before the page said `ready` would be lost: hold the latest data until then. */
  private ready = false;

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private readonly handlers: DashboardHandlers,
  ) {
    panel.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist')] };
    panel.webview.html = this.html();
    panel.webview.onDidReceiveMessage((m: PageMessage) => void this.onMessage(m));
    panel.onDidDispose(() => {
      this.cancel?.();
      if (DashboardPanel.current === this) DashboardPanel.current = undefined;
    });
  }

  /** The open panel, if any (not revealed). */
  static open(): DashboardPanel | undefined {
    return DashboardPanel.current;
  }

  /** The open panel, revealed, or a new one beside the active editor. */
  static show(extensionUri: vscode.Uri, handlers: DashboardHandlers): DashboardPanel {
    if (DashboardPanel.current) {
      DashboardPanel.current.panel.reveal(vscode.ViewColumn.Beside, true);
      return DashboardPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(
      DASHBOARD_VIEW_TYPE,
      'ViT Lens',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      {
        enableScripts: true,
        localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist')],
      },
    );
    return (DashboardPanel.current = new DashboardPanel(panel, extensionUri, handlers));
  }

  /** After a window reload: the page restores its own state; the host just reattaches. */
  static revive(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, handlers: DashboardHandlers): void {
    DashboardPanel.current?.panel.dispose();
    DashboardPanel.current = new DashboardPanel(panel, extensionUri, handlers);
  }

  /** What the panel shows now (to merge a new result into). */
  get shown(): DashboardData | null {
    return this.data;
  }

  setData(data: DashboardData): void {
    this.data = data;
    this.panel.title = `ViT Lens — ${data.title.split(' — ')[0]}`;
    if (this.ready) void this.post({ type: 'data', data });
  }

  /** While a job runs: the page's Cancel button calls this. */
  onCancel(f: (() => void) | null): void {
    this.cancel = f;
  }

  /** The inference view's clicks: maps for another query token of an image. */
  onAttentionQuery(f: ((item: number, point: { x: number; y: number }) => Promise<void>) | null): void {
    this.attentionQuery = f;
  }

  post(m: HostMessage): Thenable<boolean> {
    if (m.type === 'benchCase' && this.data?.bench) this.data.bench.cases.push(m.case);
    if (m.type === 'progress' && this.data) this.data.live = m.live;
    const item = m.type === 'attentionMaps' ? this.data?.infer?.items[m.item] : undefined;
    if (m.type === 'attentionMaps' && item && !m.error) item.maps = m.maps;
    return this.ready ? this.panel.webview.postMessage(m) : Promise.resolve(false);
  }

  private html(): string {
    const w = this.panel.webview;
    const dist = (f: string) => w.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', f)).toString();
    return dashboardHtml({
      nonce: makeNonce(),
      cspSource: w.cspSource,
      script: { uri: dist('webview.js') },
      style: { uri: dist('webview.css') },
      title: 'ViT Lens',
    });
  }

  private async onMessage(m: PageMessage): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.ready = true;
        if (this.data) await this.panel.webview.postMessage({ type: 'data', data: this.data } satisfies HostMessage);
        return;
      case 'cancel':
        this.cancel?.();
        return;
      case 'attentionQuery':
        await this.attentionQuery?.(m.item, m.point);
        return;
      case 'rerun':
        if (this.data?.source) this.handlers.rerun(m.view, this.data.source, m.bench);
        return;
      case 'save': {
        const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
        const target = await vscode.window.showSaveDialog({
          ...(folder ? { defaultUri: vscode.Uri.joinPath(folder, m.filename) } : {}),
          filters: { [m.mime]: [m.filename.split('.').pop() ?? '*'] },
        });
        if (target)
          await vscode.workspace.fs.writeFile(
            target,
            Buffer.from(m.content, m.encoding === 'base64' ? 'base64' : 'utf8'),
          );
        await this.panel.webview.postMessage({ type: 'saved', path: target?.fsPath ?? null } satisfies HostMessage);
        return;
      }
    }
  }
}
