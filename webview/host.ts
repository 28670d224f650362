/**
 * One interface over the page's two hosts:
 *  - the VS Code webview panel: `acquireVsCodeApi()` posts to the extension, persists state
 *    across reloads and panel restores, and files are written by the extension (a webview
 *    cannot download);
 *  - the CLI's self-contained HTML report: no one to talk to; state lives in `history.state`
 *    (survives a reload of the file), files are saved with a Blob and an <a download>.
 */
import type { DashboardData, DashboardView, HostMessage, PageMessage } from '../protocol/dashboard';

/** What the page remembers per panel (VS Code: setState; report: history.state). */
export interface PersistedState {
  /** The data shown (omitted in the standalone report, whose data is inlined in the page). */
  data?: DashboardData;
  view: DashboardView;
  selections: Selections;
}

export interface Selections {
  /** Pseudo-inverse view: stage and head shown in the convergence chart. */
  pinvStage?: number;
  pinvHead?: number;
  /** Approximation view: the error its charts plot (outputs or attention matrices). */
  approxMetric?: 'out' | 'mat';
  /** Gradients view: what its per-parameter chart plots (‖grad‖, or ‖grad‖ / ‖param‖). */
  gradMetric?: 'grad' | 'ratio';
  /** Benchmark view, when its report has both: forward passes or training steps. */
  benchMode?: 'inference' | 'train';
  /**
   * Inference view, per item (key: the item's index): the stage shown (its number), the head
   * (null = mean over heads) and the overlay opacity (0–1).
   */
  infer?: Record<string, { stage: number; head: number | null; opacity: number }>;
  /** Sort of each table, by table id. */
  sorts?: Record<string, { column: string; dir: 'ascending' | 'descending' }>;
}

export type SaveRequest = Extract<PageMessage, { type: 'save' }>;

export interface Host {
  readonly kind: 'vscode' | 'standalone';
  post(message: PageMessage): void;
  getState(): Partial<PersistedState> | undefined;
  setState(state: PersistedState): void;
  /** Save a file: the extension asks where (answers with `saved`); the report downloads it. */
  save(file: Omit<SaveRequest, 'type'>): void;
  onMessage(handler: (message: HostMessage) => void): void;
}

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare global {
  interface Window {
    acquireVsCodeApi?: () => VsCodeApi;
  }
}

function listen(handler: (m: HostMessage) => void, sameWindowOnly = false): void {
  window.addEventListener('message', (event: MessageEvent) => {
    if (sameWindowOnly && event.source !== window) return;
    const m = event.data as HostMessage | null;
    if (m && typeof m === 'object' && typeof (m as { type?: unknown }).type === 'string') handler(m);
  });
}

class VsCodeHost implements Host {
  readonly kind = 'vscode' as const;
  constructor(private readonly api: VsCodeApi) {}
  post(message: PageMessage): void {
    this.api.postMessage(message);
  }
  getState(): Partial<PersistedState> | undefined {
    const s = this.api.getState();
    return s && typeof s === 'object' ? (s as Partial<PersistedState>) : undefined;
  }
  setState(state: PersistedState): void {
    this.api.setState(state);
  }
  save(file: Omit<SaveRequest, 'type'>): void {
    this.post({ type: 'save', ...file });
  }
  onMessage(handler: (message: HostMessage) => void): void {
    listen(handler);
  }
}

function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

class StandaloneHost implements Host {
  readonly kind = 'standalone' as const;
  /** Nobody listens in a static report; kept for tests and debugging. */
  readonly posted: PageMessage[] = [];
  post(message: PageMessage): void {
    this.posted.push(message);
  }
  getState(): Partial<PersistedState> | undefined {
    const s = (history.state as { vitlens?: Partial<PersistedState> } | null)?.vitlens;
    return s && typeof s === 'object' ? s : undefined;
  }
  setState(state: PersistedState): void {
    // The data is in the page already: remember only what the user chose.
    try {
      history.replaceState({ vitlens: { view: state.view, selections: state.selections } }, '');
    } catch {
      /* a sandboxed file:// page may refuse; state is a convenience */
    }
  }
  save(file: Omit<SaveRequest, 'type'>): void {
    const body = file.encoding === 'base64' ? base64ToBytes(file.content) : file.content;
    const url = URL.createObjectURL(new Blob([body], { type: file.mime }));
    const a = document.createElement('a');
    a.href = url;
    a.download = file.filename;
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
  onMessage(handler: (message: HostMessage) => void): void {
    // A static report has no host: only messages the page posts to itself (debugging, tests),
    // never from a frame that embeds it.
    listen(handler, true);
  }
}

let host: Host | undefined;

/** The host this page runs in (acquireVsCodeApi may be called once per page: cached). */
export function getHost(): Host {
  if (!host)
    host =
      typeof window.acquireVsCodeApi === 'function' ? new VsCodeHost(window.acquireVsCodeApi()) : new StandaloneHost();
  return host;
}
