/**
 * The VS Code side: starts the language server in its own Node process (IPC) and
 * registers the commands its CodeLenses reference. No model arithmetic here: every figure
 * comes from the server, and the dashboard (client/dashboard.ts) only shows it.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { DASHBOARD_VIEW_TYPE, type DashboardData, type DashboardView } from '../protocol/dashboard';
import { BenchCaseNotification, BenchRequest, Commands, InferRequest, PinvRequest, ProfileRequest, ProfileSweepRequest, ProgressNotification, TrustNotification, type InferParams } from '../protocol/lsp';
import type { BenchReport } from '../protocol/results';
import { DashboardPanel, type DashboardHandlers } from './dashboard';
import { DeviceStatus } from './status';

let client: LanguageClient | undefined;

/** The command behind each dashboard view (its Run again button). */
const RERUN: Record<DashboardView, string> = { profile: Commands.showProfile, bench: Commands.benchmark, pinv: Commands.pinv, infer: Commands.infer };

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const module = context.asAbsolutePath(path.join('dist', 'server.js'));
  // A Node.js of the user's choosing may run the server (and so its workers); default VS Code's.
  const runtime = vscode.workspace.getConfiguration('vitlens').get<string>('server.runtime') || undefined;
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc, ...(runtime ? { runtime } : {}) },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6009'] } },
  };
  const clientOptions: LanguageClientOptions = {
    // The server decides which YAML files are ViT Lens configs (by name or by their keys).
    documentSelector: [{ language: 'yaml', scheme: 'file' }, { language: 'yaml', scheme: 'untitled' }],
    outputChannelName: 'ViT Lens',
    // The server runs no model in an untrusted workspace (vitlens/trust tells it when that changes).
    initializationOptions: { trusted: vscode.workspace.isTrusted },
  };
  const lc = (client = new LanguageClient('vitlens', 'ViT Lens', serverOptions, clientOptions));

  const handlers: DashboardHandlers = {
    rerun: (view, source) => void vscode.commands.executeCommand(RERUN[view], source),
  };
  const panel = () => DashboardPanel.show(context.extensionUri, handlers);
  const status = new DeviceStatus(lc);
  /** Model execution needs a trusted workspace; say so instead of sending a request that will be refused. */
  const requireTrust = (what: string): boolean => {
    if (vscode.workspace.isTrusted) return true;
    void vscode.window.showWarningMessage(`ViT Lens: ${what} runs a model, which needs a trusted workspace. Profiles and diagnostics work without trust.`, 'Manage Workspace Trust').then((b) => {
      if (b) void vscode.commands.executeCommand('workbench.trust.manage');
    });
    return false;
  };
  const targetUri = (uri?: string | vscode.Uri) => (uri ? uri.toString() : vscode.window.activeTextEditor?.document.uri.toString());

  /** Profile + sweep of a config, merged with what the panel already shows for the same config. */
  const profileData = async (uri: string, view: DashboardView): Promise<DashboardData | null> => {
    const resolutions = vscode.workspace.getConfiguration('vitlens').get<number[]>('profile.resolutions');
    const [profile, profileSweep] = await Promise.all([
      lc.sendRequest(ProfileRequest, { uri }),
      lc.sendRequest(ProfileSweepRequest, { uri, ...(resolutions?.length ? { resolutions } : {}) }),
    ]);
    if (!profile) {
      void vscode.window.showWarningMessage('ViT Lens: this config has errors (see Problems), so it cannot be profiled.');
      return null;
    }
    const shown = DashboardPanel.open()?.shown;
    const same = shown?.source === uri ? shown : null;
    return {
      title: `${profile.model} — ${vscode.workspace.asRelativePath(vscode.Uri.parse(uri))}`,
      source: uri,
      generatedAt: new Date().toISOString(),
      producer: `ViT Lens ${context.extension.packageJSON.version} VS Code extension`,
      profile,
      profileSweep,
      bench: same?.bench ?? null,
      pinv: same?.pinv ?? null,
      infer: same?.infer ?? null,
      live: null,
      view,
    };
  };

  /** The active config (a YAML file the server treats as one: it has our lenses), or one picked from the workspace's. */
  const pickConfig = async (): Promise<string | undefined> => {
    const active = vscode.window.activeTextEditor?.document;
    if (active?.languageId === 'yaml') {
      const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', active.uri);
      if (lenses?.some((l) => l.command?.command === Commands.showProfile)) return active.uri.toString();
    }
    const files = await vscode.workspace.findFiles('**/{SOFT_*.yaml,*.vitlens.yaml,*.vitlens.yml,vitlens*.yaml}', '**/node_modules/**', 200);
    const pick = await vscode.window.showQuickPick(
      files.map((f) => ({ label: vscode.workspace.asRelativePath(f), uri: f })),
      { title: 'ViT Lens: which model config runs these images?' },
    );
    if (!pick) return undefined;
    await vscode.workspace.openTextDocument(pick.uri); // the server analyses open documents
    return pick.uri.toString();
  };

  /** Images (given, or the config's `images:`, or picked) through the config's model; results in the dashboard. */
  const runInference = async (config: string, images: string[] | undefined) => {
    const params: InferParams = { uri: config, maps: { point: null } };
    if (images) params.images = images;
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(config));
    const text = doc.getText();
    if (!images && !/^images\s*:/m.test(text)) {
      const picked = await vscode.window.showOpenDialog({ canSelectMany: true, filters: { Images: ['png', 'jpg', 'jpeg', 'webp'] }, title: 'ViT Lens: images to run' });
      if (!picked?.length) return;
      params.images = picked.map((u) => u.fsPath);
    }
    if (!/^checkpoint\s*:/m.test(text)) {
      const choice = await vscode.window.showQuickPick(['Choose a checkpoint (.pth, .safetensors)…', 'Random weights (timing and maps only; predictions mean nothing)'], { title: 'ViT Lens: the config names no checkpoint' });
      if (!choice) return;
      if (choice.startsWith('Random')) params.checkpoint = null;
      else {
        const file = await vscode.window.showOpenDialog({ filters: { Checkpoints: ['pth', 'pt', 'bin', 'safetensors'] }, title: 'ViT Lens: checkpoint' });
        if (!file?.[0]) return;
        params.checkpoint = file[0].fsPath;
      }
    }
    const data = await profileData(config, 'infer');
    if (!data) return;
    const p = panel();
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'ViT Lens: running inference', cancellable: true }, async (_progress, token) => {
      try {
        data.infer = await lc.sendRequest(InferRequest, params, token);
        p.setData(data);
        // The page's clicks on an image ask for the maps of another query token.
        p.onAttentionQuery(async (item, point) => {
          const image = data.infer?.items[item]?.name;
          if (!image) return;
          try {
            const again = await lc.sendRequest(InferRequest, { ...params, images: [image], maps: { point } });
            await p.post({ type: 'attentionMaps', item, maps: again.items[0]?.maps ?? [] });
          } catch (e) {
            await p.post({ type: 'attentionMaps', item, maps: [], error: (e as Error).message });
          }
        });
      } catch (e) {
        if (!token.isCancellationRequested) void vscode.window.showErrorMessage(`ViT Lens: inference failed: ${(e as Error).message}`);
      }
    });
  };

  context.subscriptions.push(
    vscode.commands.registerCommand(Commands.showProfile, async (uri?: string | vscode.Uri) => {
      const target = targetUri(uri);
      if (!target) return;
      const data = await profileData(target, 'profile');
      if (data) panel().setData(data);
    }),

    vscode.commands.registerCommand(Commands.benchmark, async (uri?: string | vscode.Uri) => {
      const target = targetUri(uri);
      if (!target || !requireTrust('A benchmark')) return;
      const data = await profileData(target, 'bench');
      if (!data) return;
      const p = panel();
      // A live report that fills in case by case; the server's final report replaces it.
      data.bench = emptyBenchReport(data.profile!.model, target);
      data.live = { job: 'bench', message: 'starting the benchmark worker…', done: 0, total: 1, cancellable: true };
      p.setData(data);
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'ViT Lens: benchmarking attention', cancellable: true }, async (progress, token) => {
        const cts = new vscode.CancellationTokenSource();
        token.onCancellationRequested(() => cts.cancel());
        p.onCancel(() => cts.cancel());
        let last = 0;
        const subs = [
          lc.onNotification(ProgressNotification, (n) => {
            if (n.uri !== target || n.job !== 'bench') return;
            progress.report({ message: n.message, increment: ((n.done - last) / Math.max(n.total, 1)) * 100 });
            last = n.done;
            void p.post({ type: 'progress', live: { job: 'bench', message: n.message, done: n.done, total: n.total, cancellable: true } });
          }),
          lc.onNotification(BenchCaseNotification, (n) => {
            if (n.uri === target) void p.post({ type: 'benchCase', case: n.case });
          }),
        ];
        try {
          const report = await lc.sendRequest(BenchRequest, { uri: target }, cts.token);
          await p.post({ type: 'jobDone', bench: report });
          p.setData({ ...(p.shown ?? data), bench: report, live: null, view: 'bench' });
        } catch (e) {
          const cancelled = cts.token.isCancellationRequested;
          const message = cancelled ? 'Benchmark cancelled; the cases that finished are kept.' : `Benchmark failed: ${(e as Error).message}`;
          await p.post({ type: 'jobDone', error: message, cancelled });
          if (!cancelled) void vscode.window.showErrorMessage(`ViT Lens: ${message}`);
        } finally {
          for (const s of subs) s.dispose();
          p.onCancel(null);
          cts.dispose();
        }
      });
    }),

    vscode.commands.registerCommand(Commands.pinv, async (uri?: string | vscode.Uri) => {
      const target = targetUri(uri);
      if (!target || !requireTrust('The pseudo-inverse analysis')) return;
      const data = await profileData(target, 'pinv');
      if (!data) return;
      const p = panel();
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'ViT Lens: pseudo-inverse convergence', cancellable: true }, async (_progress, token) => {
        try {
          data.pinv = await lc.sendRequest(PinvRequest, { uri: target }, token);
          p.setData(data);
        } catch (e) {
          if (!token.isCancellationRequested) void vscode.window.showErrorMessage(`ViT Lens: pseudo-inverse analysis failed: ${(e as Error).message}`);
        }
      });
    }),

    vscode.commands.registerCommand(Commands.infer, async (uri?: string | vscode.Uri) => {
      const target = targetUri(uri);
      if (target && requireTrust('Inference')) await runInference(target, undefined);
    }),

    // Explorer: the clicked image, or every selected one, through a config's model.
    vscode.commands.registerCommand(Commands.inferImages, async (clicked?: vscode.Uri, selected?: vscode.Uri[]) => {
      const images = (selected?.length ? selected : clicked ? [clicked] : []).map((u) => u.fsPath);
      if (!images.length || !requireTrust('Inference')) return;
      const config = await pickConfig();
      if (config) await runInference(config, images);
    }),

    vscode.commands.registerCommand(Commands.showDevices, () => status.show()),
    status,
    vscode.workspace.onDidGrantWorkspaceTrust(() => void lc.sendNotification(TrustNotification, { trusted: true })),

    vscode.window.registerWebviewPanelSerializer(DASHBOARD_VIEW_TYPE, {
      deserializeWebviewPanel: async (webviewPanel) => DashboardPanel.revive(webviewPanel, context.extensionUri, handlers),
    }),
  );
  await lc.start();
  void status.refresh();
}

function emptyBenchReport(model: string, config: string): BenchReport {
  return {
    schemaVersion: 1, model, config, startedAt: new Date().toISOString(), runtimes: [], unavailable: [], cases: [], scaling: [],
    overhead: { processStartMs: 0, probeMs: 0, buildMs: 0, sessionMs: 0, totalMs: 0, fraction: 0 },
    notes: ['Running: cases appear as they finish; devices, scaling fits and overhead come with the final report.'],
  };
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
