/**
 * The dashboard page's HTML shell and its Content-Security-Policy: the contract between the
 * two hosts that build it — the extension's webview panel (assets by URI under the extension's
 * dist/) and the CLI's self-contained report (assets and data inlined) — and the page bundle
 * (webview/) that runs in it. One shell, so the report and the webview run the same page code
 * under the same rules: no remote content, scripts and styles only with the page's nonce.
 * Plain string building with the platform's Web Crypto: no Node module, nothing of the server.
 */
import { INLINE_DATA_ELEMENT_ID, type DashboardData } from './dashboard';

export type Asset = { uri: string } | { inline: string };

export interface PageOptions {
  /** Fresh per page load. */
  nonce: string;
  /** The webview's `cspSource` (VS Code); null for a standalone file. */
  cspSource: string | null;
  script: Asset;
  style: Asset;
  /** Inlined for a static report; a webview gets its data by message instead. */
  data?: DashboardData;
  title: string;
}

/** 18 random bytes (Web Crypto, in Node ≥ 19 and every browser) as base64 without `+/=`. */
export function makeNonce(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, '');
}

/** The exact policy the page ships with (the tests load the page under it). */
export function dashboardCsp(nonce: string, cspSource: string | null): string {
  const src = cspSource ? `${cspSource} ` : '';
  return [
    "default-src 'none'",
    `img-src ${src}data: blob:`,
    `style-src ${src}'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
    ...(cspSource ? [`font-src ${cspSource}`] : []),
  ].join('; ');
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** JSON that cannot end its <script> element early or open a comment. */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function dashboardHtml(o: PageOptions): string {
  const n = escapeHtml(o.nonce);
  const style =
    'uri' in o.style
      ? `<link rel="stylesheet" nonce="${n}" href="${escapeHtml(o.style.uri)}">`
      : `<style nonce="${n}">${o.style.inline.replace(/<\/style/gi, '<\\/style')}</style>`;
  const script =
    'uri' in o.script
      ? `<script nonce="${n}" src="${escapeHtml(o.script.uri)}"></script>`
      : `<script nonce="${n}">${o.script.inline.replace(/<\/script/gi, '<\\/script')}</script>`;
  const data = o.data
    ? `<script type="application/json" id="${INLINE_DATA_ELEMENT_ID}">${scriptSafeJson(o.data)}</script>`
    : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(dashboardCsp(o.nonce, o.cspSource))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(o.title)}</title>
${style}
</head>
<body>
<div id="app" role="main"></div>
${data}
${script}
</body>
</html>
`;
}
