/**
 * "Benchmark attention": runs in the server's worker; the open dashboard fills in case by case
 * (vitlens/benchCase) with live progress, and its Cancel button (or the notification's) stops it.
 */
import * as vscode from 'vscode';
import { BenchCaseNotification, BenchRequest, Commands, ProgressNotification } from '../../protocol/lsp';
import type { BenchReport } from '../../protocol/results';
import { targetUri } from '../config-target';
import { dashboardData } from '../dashboard-data';
import { requireTrust } from '../trust';
import type { CommandContext } from './context';

export function registerBenchmarkCommands(ctx: CommandContext): vscode.Disposable[] {
  const lc = ctx.client;
  return [
    vscode.commands.registerCommand(Commands.benchmark, async (uri?: string | vscode.Uri) => {
      const target = targetUri(uri);
      if (!target || !requireTrust('A benchmark')) return;
      const data = await dashboardData(ctx, target, 'bench');
      if (!data) return;
      const p = ctx.panel();
      // A live report that fills in case by case; the server's final report replaces it.
      data.bench = emptyBenchReport(data.profile!.model, target);
      data.live = { job: 'bench', message: 'starting the benchmark worker…', done: 0, total: 1, cancellable: true };
      p.setData(data);
      await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: 'ViT Lens: benchmarking attention',
          cancellable: true,
        },
        async (progress, token) => {
          const cts = new vscode.CancellationTokenSource();
          token.onCancellationRequested(() => cts.cancel());
          p.onCancel(() => cts.cancel());
          let last = 0;
          const subs = [
            lc.onNotification(ProgressNotification, (n) => {
              if (n.uri !== target || n.job !== 'bench') return;
              progress.report({ message: n.message, increment: ((n.done - last) / Math.max(n.total, 1)) * 100 });
              last = n.done;
              void p.post({
                type: 'progress',
                live: { job: 'bench', message: n.message, done: n.done, total: n.total, cancellable: true },
              });
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
            const message = cancelled
              ? 'Benchmark cancelled; the cases that finished are kept.'
              : `Benchmark failed: ${(e as Error).message}`;
            await p.post({ type: 'jobDone', error: message, cancelled });
            if (!cancelled) void vscode.window.showErrorMessage(`ViT Lens: ${message}`);
          } finally {
            for (const s of subs) s.dispose();
            p.onCancel(null);
            cts.dispose();
          }
        },
      );
    }),
  ];
}

/** The live report the cases stream into until the server's final report arrives. */
function emptyBenchReport(model: string, config: string): BenchReport {
  return {
    schemaVersion: 1,
    model,
    config,
    startedAt: new Date().toISOString(),
    runtimes: [],
    unavailable: [],
    cases: [],
    scaling: [],
    overhead: { processStartMs: 0, probeMs: 0, buildMs: 0, sessionMs: 0, totalMs: 0, fraction: 0 },
    notes: ['Running: cases appear as they finish; devices, scaling fits and overhead come with the final report.'],
  };
}
