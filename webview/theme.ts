/**
 * Chart colours from the host's theme. VS Code rewrites the `--vscode-*` variables and
 * switches the body class (vscode-light / vscode-dark / vscode-high-contrast /
 * vscode-high-contrast-light) when the user changes theme; the standalone report defines
 * fallbacks for light and dark in styles.css (prefers-color-scheme). Canvas cannot use CSS
 * variables, so the values are read with getComputedStyle and every chart is re-coloured
 * when they change.
 */

export interface Theme {
  kind: 'light' | 'dark' | 'high-contrast' | 'high-contrast-light';
  foreground: string;
  /** Secondary text (axis titles, guides). */
  muted: string;
  background: string;
  border: string;
  /** Grid lines: the border colour, faint. */
  grid: string;
  focus: string;
  red: string;
  blue: string;
  yellow: string;
  orange: string;
  green: string;
  purple: string;
  fontFamily: string;
  fontSize: number;
}

const FALLBACK_LIGHT = {
  foreground: '#1f2328',
  background: '#ffffff',
  border: '#d0d7de',
  focus: '#0969da',
  red: '#cf222e',
  blue: '#0969da',
  yellow: '#9a6700',
  orange: '#bc4c00',
  green: '#1a7f37',
  purple: '#8250df',
};

let probe: CanvasRenderingContext2D | null = null;

/** Any CSS colour → '#rrggbb' or 'rgba(r, g, b, a)' (the canvas normalises it). '' if invalid. */
export function normalizeColor(css: string): string {
  const value = css.trim();
  if (!value) return '';
  probe ??= document.createElement('canvas').getContext('2d');
  if (!probe) return value;
  probe.fillStyle = '#010203';
  probe.fillStyle = value;
  const out = String(probe.fillStyle);
  // An invalid value leaves the sentinel in place.
  if (out === '#010203' && !/^#010203$/i.test(value) && value.toLowerCase() !== 'rgb(1, 2, 3)') return '';
  return out;
}

export function parseColor(color: string): [number, number, number, number] {
  const c = normalizeColor(color) || color;
  let m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(c);
  if (m) return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16), 1];
  m = /^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*([\d.]+)\s*)?\)$/i.exec(c);
  if (m) return [Number(m[1]), Number(m[2]), Number(m[3]), m[4] === undefined ? 1 : Number(m[4])];
  return [128, 128, 128, 1];
}

const hex2 = (n: number): string =>
  Math.round(Math.max(0, Math.min(255, n)))
    .toString(16)
    .padStart(2, '0');

/** The colour at `alpha` opacity. */
export function withAlpha(color: string, alpha: number): string {
  const [r, g, b] = parseColor(color);
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** Linear mix of two colours (t = 0 → a, 1 → b), opaque. */
export function mix(a: string, b: string, t: number): string {
  const x = parseColor(a);
  const y = parseColor(b);
  return `#${hex2(x[0] + (y[0] - x[0]) * t)}${hex2(x[1] + (y[1] - x[1]) * t)}${hex2(x[2] + (y[2] - x[2]) * t)}`;
}

function themeKind(): Theme['kind'] {
  const c = document.body.classList;
  if (c.contains('vscode-high-contrast-light')) return 'high-contrast-light';
  if (c.contains('vscode-high-contrast')) return 'high-contrast';
  if (c.contains('vscode-dark')) return 'dark';
  if (c.contains('vscode-light')) return 'light';
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** Reads the current theme from the CSS variables (body: VS Code may set them on html or body). */
export function readTheme(): Theme {
  const cs = getComputedStyle(document.body);
  const v = (name: string, fallback: string): string => normalizeColor(cs.getPropertyValue(name)) || fallback;
  const kind = themeKind();
  const dark = kind === 'dark' || kind === 'high-contrast';
  const fb = dark
    ? {
        ...FALLBACK_LIGHT,
        foreground: '#cccccc',
        background: '#1f1f1f',
        border: '#3c3c3c',
        focus: '#0078d4',
        red: '#f14c4c',
        blue: '#3794ff',
        yellow: '#cca700',
        orange: '#d18616',
        green: '#89d185',
        purple: '#b180d7',
      }
    : FALLBACK_LIGHT;
  const foreground = v('--vscode-foreground', fb.foreground);
  const background = v('--vscode-editor-background', fb.background);
  const border = v('--vscode-panel-border', fb.border);
  const fontSize = parseFloat(cs.getPropertyValue('--vscode-font-size')) || parseFloat(cs.fontSize) || 13;
  return {
    kind,
    foreground,
    muted: mix(foreground, background, 0.3),
    background,
    border,
    grid: kind.startsWith('high-contrast') ? withAlpha(border, 0.6) : withAlpha(border, 0.55),
    focus: v('--vscode-focusBorder', fb.focus),
    red: v('--vscode-charts-red', fb.red),
    blue: v('--vscode-charts-blue', fb.blue),
    yellow: v('--vscode-charts-yellow', fb.yellow),
    orange: v('--vscode-charts-orange', fb.orange),
    green: v('--vscode-charts-green', fb.green),
    purple: v('--vscode-charts-purple', fb.purple),
    fontFamily: cs.getPropertyValue('--vscode-font-family').trim() || cs.fontFamily || 'system-ui, sans-serif',
    fontSize,
  };
}

const key = (t: Theme): string => JSON.stringify(t);

/**
 * Calls `onChange` with the new theme whenever the body's class or the html/body style
 * (where VS Code writes its variables) changes, or the OS colour scheme flips (standalone).
 * Coalesced per frame; only real changes are reported.
 */
export function watchTheme(onChange: (theme: Theme) => void): () => void {
  let last = key(readTheme());
  let pending = false;
  const check = (): void => {
    if (pending) return;
    pending = true;
    // A microtask, not a frame: a hidden (background) panel gets no animation frames.
    queueMicrotask(() => {
      pending = false;
      const t = readTheme();
      const k = key(t);
      if (k === last) return;
      last = k;
      onChange(t);
    });
  };
  const observer = new MutationObserver(check);
  observer.observe(document.body, { attributes: true, attributeFilter: ['class', 'style'] });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['class', 'style'] });
  const media = matchMedia('(prefers-color-scheme: dark)');
  media.addEventListener('change', check);
  return () => {
    observer.disconnect();
    media.removeEventListener('change', check);
  };
}
