/**
 * Runs a handler; a bug in one feature is logged and answered with `fallback`, never fatal:
 * the server keeps serving every other request and document.
 */
import type { RemoteConsole } from 'vscode-languageserver/node';

export type Guard = <T>(what: string, fallback: T, f: () => T) => T;

export function makeGuard(console: RemoteConsole): Guard {
  return <T>(what: string, fallback: T, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      console.error(`vitlens: ${what} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      return fallback;
    }
  };
}
