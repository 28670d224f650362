/**
 * The CLI's self-contained HTML report: the dashboard page (dist/webview.js + .css, the same
 * bundle the VS Code webview loads) with its data inlined, under the same CSP. One file,
 * openable offline, nothing fetched.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DashboardData } from '../../protocol/dashboard';
import { dashboardHtml, makeNonce } from '../../protocol/page';

/** dist/<name> next to the running bundle, or the built one when running from source (tests). */
function distAsset(name: string): string {
  const candidates = [path.join(__dirname, name), path.join(__dirname, '..', '..', 'dist', name)];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found)
    throw new Error(`the dashboard bundle is missing (looked for ${candidates.join(', ')}): run \`npm run build\``);
  return found;
}

export function reportHtml(data: DashboardData): string {
  return dashboardHtml({
    nonce: makeNonce(),
    cspSource: null,
    script: { inline: fs.readFileSync(distAsset('webview.js'), 'utf8') },
    style: { inline: fs.readFileSync(distAsset('webview.css'), 'utf8') },
    data,
    title: `ViT Lens — ${data.title}`,
  });
}

export function writeReport(file: string, data: DashboardData): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, reportHtml(data));
}
