/**
 * A real LSP client for tests: spawns the bundled server (`dist/server.js --stdio`)
 * and talks JSON-RPC to it over its stdio, as an editor does.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import type {
  CodeLens,
  CompletionItem,
  CompletionList,
  Diagnostic,
  Hover,
  InlayHint,
  PublishDiagnosticsParams,
} from 'vscode-languageserver-protocol';
import { ProfileRequest, type ProfileParams } from '../../protocol/lsp';
import { ROOT } from './fixtures';

export class LspClient {
  private readonly versions = new Map<string, number>();
  private readonly latest = new Map<string, PublishDiagnosticsParams>();
  private readonly waiters: { uri: string; version: number; resolve: (d: Diagnostic[]) => void }[] = [];
  readonly stderr: string[] = [];

  private constructor(
    readonly proc: ChildProcessWithoutNullStreams,
    readonly conn: MessageConnection,
  ) {
    conn.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => {
      this.latest.set(p.uri, p);
      for (const w of [...this.waiters]) {
        if (w.uri === p.uri && this.versions.get(p.uri) === w.version) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(p.diagnostics);
        }
      }
    });
    conn.onNotification('window/logMessage', (p: { message: string }) => {
      this.stderr.push(p.message);
    });
    proc.stderr.on('data', (d) => {
      this.stderr.push(String(d));
    });
  }

  /**
   * Spawns the bundled server. `settings` makes this client answer workspace/configuration as an
   * editor with those `vitlens` settings would; `initializationOptions` as VS Code's client sends them.
   */
  static async start(
    o: { settings?: Record<string, unknown>; initializationOptions?: unknown } = {},
  ): Promise<LspClient> {
    const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'server.js'), '--stdio'], { stdio: 'pipe' });
    const conn = createMessageConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
    if (o.settings)
      conn.onRequest('workspace/configuration', (p: { items: { section?: string }[] }) =>
        p.items.map((i) => (i.section === 'vitlens' ? o.settings : null)),
      );
    conn.listen();
    const client = new LspClient(proc, conn);
    const capabilities = o.settings ? { workspace: { configuration: true } } : {};
    await conn.sendRequest('initialize', {
      processId: process.pid,
      rootUri: null,
      capabilities,
      ...(o.initializationOptions !== undefined ? { initializationOptions: o.initializationOptions } : {}),
    });
    await conn.sendNotification('initialized', {});
    return client;
  }

  static uriOf(file: string): string {
    return pathToFileURL(path.resolve(file)).href;
  }

  /** Opens (or replaces) a document and resolves with the diagnostics published for that version. */
  async open(uri: string, text: string): Promise<Diagnostic[]> {
    const version = (this.versions.get(uri) ?? 0) + 1;
    this.versions.set(uri, version);
    const done = new Promise<Diagnostic[]>((resolve) => {
      this.waiters.push({ uri, version, resolve });
    });
    if (version === 1)
      await this.conn.sendNotification('textDocument/didOpen', {
        textDocument: { uri, languageId: 'yaml', version, text },
      });
    else
      await this.conn.sendNotification('textDocument/didChange', {
        textDocument: { uri, version },
        contentChanges: [{ text }],
      });
    return done;
  }

  async close(uri: string): Promise<void> {
    this.versions.delete(uri);
    await this.conn.sendNotification('textDocument/didClose', { textDocument: { uri } });
  }

  hover(uri: string, line: number, character: number): Promise<Hover | null> {
    return this.conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character } });
  }

  async completion(uri: string, line: number, character: number): Promise<CompletionItem[]> {
    const r = await this.conn.sendRequest<CompletionItem[] | CompletionList | null>('textDocument/completion', {
      textDocument: { uri },
      position: { line, character },
    });
    return Array.isArray(r) ? r : (r?.items ?? []);
  }

  codeLens(uri: string): Promise<CodeLens[] | null> {
    return this.conn.sendRequest('textDocument/codeLens', { textDocument: { uri } });
  }

  inlayHints(uri: string): Promise<InlayHint[] | null> {
    return this.conn.sendRequest('textDocument/inlayHint', {
      textDocument: { uri },
      range: { start: { line: 0, character: 0 }, end: { line: 10000, character: 0 } },
    });
  }

  profile(params: ProfileParams) {
    return this.conn.sendRequest(ProfileRequest, params);
  }

  async stop(): Promise<void> {
    try {
      await Promise.race([this.conn.sendRequest('shutdown'), new Promise((r) => setTimeout(r, 2000))]);
      await this.conn.sendNotification('exit');
    } catch {
      // The process may already be gone; stopping is best effort.
    }
    this.conn.dispose();
    this.proc.kill();
  }
}

/** A diagnostic's message as text (LSP 3.18 allows markup). */
export function messageOf(d: Diagnostic): string {
  return typeof d.message === 'string' ? d.message : d.message.value;
}

/** Text of a diagnostic's range in `text`. */
export function rangeText(text: string, d: Diagnostic): string {
  const lines = text.split('\n');
  const { start, end } = d.range;
  if (start.line === end.line) return lines[start.line]!.slice(start.character, end.character);
  return [
    lines[start.line]!.slice(start.character),
    ...lines.slice(start.line + 1, end.line),
    lines[end.line]!.slice(0, end.character),
  ].join('\n');
}
