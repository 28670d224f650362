/**
 * When a document's diagnostics are computed and published after it changes.
 *
 * Why: the analysis runs on the server's one thread. While it runs, the client's next edits pile
 * up in the connection's queue; analysing each of them in turn made the newest version wait for
 * every superseded one (30 keystrokes on a 48 KB config: the last diagnostics after 2.5 s). So a
 * change is published at once unless it comes sooner after the document's last analysis than
 * that analysis took, and that took longer than `quietMs` — the client is editing faster than
 * the server analyses, enough for the edits to pile up. Then it waits
 * `quietMs` for the queue to drain, and the edits are published once, for the newest version;
 * never later than `maxDelayMs` after the first of them, so a client that never pauses still sees
 * diagnostics. Cheap documents are never held, whatever the pace.
 */
import { performance } from 'node:perf_hooks';

export interface PublishTiming {
  /** How long a held change waits for the next one before it is published. */
  quietMs: number;
  /** The longest a held-back change waits. */
  maxDelayMs: number;
}

export const DEFAULT_PUBLISH_TIMING: PublishTiming = { quietMs: 10, maxDelayMs: 200 };

export class PublishScheduler {
  private readonly held = new Map<string, { timer: NodeJS.Timeout; since: number }>();
  /** When the document's last analysis ended, and how long it took (ms, on `now`). */
  private readonly last = new Map<string, { ended: number; took: number }>();

  constructor(
    private readonly publish: (uri: string) => void,
    private readonly timing: PublishTiming = DEFAULT_PUBLISH_TIMING,
    /** Milliseconds from any fixed origin; a test passes its own clock. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The document changed (or opened): publish now, or coalesce with the edits around it. */
  changed(uri: string): void {
    const now = this.now();
    const held = this.held.get(uri);
    if (held) {
      // Wait for quiet again, but not past the first held change's deadline.
      clearTimeout(held.timer);
      held.timer = this.arm(uri, Math.min(this.timing.quietMs, held.since + this.timing.maxDelayMs - now));
      return;
    }
    const last = this.last.get(uri);
    // An analysis shorter than the quiet period cannot pile edits up enough to be worth holding.
    if (last === undefined || last.took < this.timing.quietMs || now - last.ended >= last.took) this.run(uri);
    else this.held.set(uri, { timer: this.arm(uri, this.timing.quietMs), since: now });
  }

  /** The document closed: nothing more to publish for it. */
  forget(uri: string): void {
    const held = this.held.get(uri);
    if (held) clearTimeout(held.timer);
    this.held.delete(uri);
    this.last.delete(uri);
  }

  private arm(uri: string, ms: number): NodeJS.Timeout {
    return setTimeout(() => this.run(uri), Math.max(0, ms));
  }

  private run(uri: string): void {
    this.held.delete(uri);
    const started = this.now();
    try {
      this.publish(uri);
    } finally {
      const ended = this.now();
      this.last.set(uri, { ended, took: ended - started });
    }
  }
}
