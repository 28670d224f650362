/**
 * Real headless Chromium for page tests (the dashboard webview, the CLI's HTML report):
 * launches the system Chromium through playwright-core and opens pages that record what
 * must never happen — console errors, uncaught exceptions, Content-Security-Policy
 * violations and requests for anything that is not local.
 *
 *   const browser = await launchBrowser();
 *   const p = await openProbedPage(browser, { colorScheme: 'dark' });
 *   await p.page.goto(pathToFileURL(file).href);
 *   assert.deepEqual(p.problems(), []);
 *   await p.close(); await browser.close();
 */
import fs from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env['VITLENS_CHROMIUM'] ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumAvailable(): boolean {
  return fs.existsSync(CHROMIUM_PATH);
}

/** One browser for a whole test file (each page gets its own fresh context). */
export async function launchBrowser(): Promise<Browser> {
  // playwright gives every launch a fresh temporary user-data-dir.
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}

export interface CspViolation {
  directive: string;
  blockedURI: string;
  sample: string;
  sourceFile: string;
}

export interface ProbeOptions {
  colorScheme?: 'light' | 'dark';
  viewport?: { width: number; height: number };
  /** Scripts run before any page script, in order (e.g. a stand-in for acquireVsCodeApi). */
  initScripts?: string[];
  /** URL prefixes that count as local (default: file:, data:, blob:, http://127.0.0.1, about:). */
  localPrefixes?: string[];
  /** Allow downloads (the standalone report saves files with <a download>). */
  acceptDownloads?: boolean;
}

export interface ProbedPage {
  page: Page;
  context: BrowserContext;
  consoleErrors: string[];
  pageErrors: string[];
  cspViolations: CspViolation[];
  /** Requests for anything not local (each is also aborted). */
  remoteRequests: string[];
  /** Everything above in one list of readable lines: assert it is empty. */
  problems(): string[];
  close(): Promise<void>;
}

const CSP_LISTENER = `
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__vitlensReportCsp?.({ directive: e.violatedDirective || e.effectiveDirective, blockedURI: e.blockedURI, sample: e.sample, sourceFile: e.sourceFile + ':' + e.lineNumber });
  }, true);
`;

export async function openProbedPage(browser: Browser, o: ProbeOptions = {}): Promise<ProbedPage> {
  const context = await browser.newContext({
    viewport: o.viewport ?? { width: 1280, height: 900 },
    colorScheme: o.colorScheme ?? 'light',
    acceptDownloads: o.acceptDownloads ?? false,
    reducedMotion: 'reduce',
  });
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const cspViolations: CspViolation[] = [];
  const remoteRequests: string[] = [];
  const local = o.localPrefixes ?? ['file:', 'data:', 'blob:', 'about:', 'http://127.0.0.1', 'http://localhost'];
  await context.exposeFunction('__vitlensReportCsp', (v: CspViolation) => {
    cspViolations.push(v);
  });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (local.some((p) => url.startsWith(p))) return route.continue();
    remoteRequests.push(url);
    return route.abort();
  });
  await context.addInitScript(CSP_LISTENER);
  for (const s of o.initScripts ?? []) await context.addInitScript(s);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error')
      consoleErrors.push(`${m.text()}${m.location().url ? ` (${m.location().url}:${m.location().lineNumber})` : ''}`);
  });
  page.on('pageerror', (e) => pageErrors.push(`${e.name}: ${e.message}\n${e.stack ?? ''}`));
  return {
    page,
    context,
    consoleErrors,
    pageErrors,
    cspViolations,
    remoteRequests,
    problems: () => [
      ...consoleErrors.map((e) => `console error: ${e}`),
      ...pageErrors.map((e) => `page error: ${e}`),
      ...cspViolations.map(
        (v) => `CSP violation: ${v.directive} blocked ${v.blockedURI || '(inline)'} ${v.sample} at ${v.sourceFile}`,
      ),
      ...remoteRequests.map((u) => `remote request: ${u}`),
    ],
    close: () => context.close(),
  };
}
