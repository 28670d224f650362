/**
 * "Benchmark attention" and "Benchmark training step": run in the server's worker; the open
 * dashboard fills in case by case (vitlens/benchCase) with live progress, and its Cancel button (or
 * the notification's) stops it. A run in one mode keeps what the panel shows of the other mode for
 * the same config beside it (protocol/bench-mode.ts), so the view can switch between the two.
 */
import * as vscode from 'vscode';
import { mergeBenchReports } from '../../protocol/bench-mode';
import {
  BenchCaseNotification,
  BenchRequest,
  Commands,
  ProgressNotification,
  type BenchRunOptions,
} from '../../protocol/lsp';
import type { BenchMode, BenchReport } from '../../protocol/results';
import { targetUri } from '../config-target';
import { dashboardData } from '../dashboard-data';
import { requireTrust } from '../trust';
import type { CommandContext } from './context';

export function registerBenchmarkCommands(ctx: CommandContext): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(Commands.benchmark, (uri?: string | vscode.Uri, o?: BenchRunOptions) =>
      runBenchmark(ctx, uri, o?.train ? o : {}),
    ),
    vscode.commands.registerCommand(Commands.benchmarkTraining, (uri?: string | vscode.Uri, o?: BenchRunOptions) =>
      runBenchmark(ctx, uri, { ...o, train: true }),
    ),
  ];
}

/** Only the options a run in this mode takes (a forward-pass run takes none). */
function runOptions(o: BenchRunOptions): BenchRunOptions {
  if (!o.train) return {};
  return {
    train: true,
    ...(o.optimizer !== undefined ? { optimizer: o.optimizer } : {}),
    ...(o.newtonBackward ? { newtonBackward: o.newtonBackward } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
  };
}

async function runBenchmark(ctx: CommandContext, uri: string | vscode.Uri | undefined, o: BenchRunOptions) {
  const lc = ctx.client;
  const target = targetUri(uri);
  if (!target || !requireTrust('A benchmark')) return;
  const data = await dashboardData(ctx, target, 'bench');
  if (!data) return;
  const options = runOptions(o);
  const mode: BenchMode = options.train ? 'train' : 'inference';
  // What the panel showed of the other mode for this config stays beside the new run.
  const previous = data.bench;
  const p = ctx.panel();
  // A live report that fills in case by case; the server's final report replaces it.
  data.bench = mergeBenchReports(previous, emptyBenchReport(data.profile!.model, target, mode));
  data.live = { job: 'bench', message: 'starting the benchmark worker…', done: 0, total: 1, cancellable: true };
  p.setData(data);
  await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: options.train ? 'ViT Lens: benchmarking training steps' : 'ViT Lens: benchmarking attention',
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
        const report = mergeBenchReports(
          previous,
          await lc.sendRequest(BenchRequest, { uri: target, ...options }, cts.token),
        );
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
}

/** The live report the cases stream into until the server's final report arrives. */
function emptyBenchReport(model: string, config: string, mode: BenchMode): BenchReport {
  return {
    schemaVersion: 1,
    model,
    config,
    startedAt: new Date().toISOString(),
    runtimes: [],
    unavailable: [],
    cases: [],
    scaling: [],
    mode,
    overhead: { processStartMs: 0, probeMs: 0, buildMs: 0, sessionMs: 0, totalMs: 0, fraction: 0 },
    notes: ['Running: cases appear as they finish; devices, scaling fits and overhead come with the final report.'],
  };
}
