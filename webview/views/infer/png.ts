/**
 * An item's overlay as a PNG image: the overlay as shown (without the keyboard cursor) under a
 * title and the query, then its colour scale with the end values and a foot note with the
 * map's meaning, so the picture still says what it shows outside the page.
 */
import { attentionName } from '../../../protocol/format';
import { theme } from '../../charts';
import { queryText, type MapReading } from './describe';

export interface OverlayPicture {
  /** The item's name: the title. */
  name: string;
  /** The shown map, or null: the picture alone. */
  reading: MapReading | null;
  /** The overlay's size in pixels. */
  width: number;
  height: number;
  /** Draw the overlay (no cursor) into a canvas of that size. */
  draw(canvas: HTMLCanvasElement): void;
}

/** Word-wrap for canvas text. */
function wrap(ctx: CanvasRenderingContext2D, text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    const next = line ? `${line} ${word}` : word;
    if (line && ctx.measureText(next).width > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

/** The PNG, base64 without the data-URL prefix ('' where the browser has no 2D canvas). */
export function overlayPng(p: OverlayPicture): string {
  const t = theme();
  const r = p.reading;
  const W = p.width;
  const H = p.height;
  const pad = 16;
  const fs = Math.max(12, Math.round(t.fontSize));
  const lh = Math.round(fs * 1.45);
  const width = Math.max(W + 2 * pad, 460);
  const out = document.createElement('canvas');
  const c = out.getContext('2d');
  if (!c) return '';
  c.font = `${fs}px ${t.fontFamily}`;
  const textW = width - 2 * pad;
  const title = wrap(
    c,
    r
      ? `${p.name} — stage ${r.map.stage} (${attentionName(r.map.attention)}, block ${r.map.block}), ${r.head}`
      : p.name,
    textW,
  );
  const sub = r
    ? wrap(
        c,
        `${queryText(r.map)}; min ${r.fmt(r.scale.min)}, max ${r.fmt(r.scale.max)}${r.map.clsWeight ? `; cls key weight ${r.fmt(r.cls)}` : ''}`,
        textW,
      )
    : [];
  const foot = r
    ? wrap(
        c,
        `${r.scale.kind === 'diverging' ? 'Diverging scale, centred on 0' : 'Viridis, min → max'}; nearest-neighbour upscaling; ring = query. ${r.map.meaning}`,
        textW,
      )
    : [];
  const legendH = r ? 14 + 6 + lh : 0;
  const height = pad + (title.length + sub.length) * lh + 8 + H + (r ? 12 + legendH : 0) + foot.length * lh + pad;
  out.width = width;
  out.height = height;
  c.fillStyle = t.background;
  c.fillRect(0, 0, width, height);
  c.font = `600 ${fs}px ${t.fontFamily}`;
  c.fillStyle = t.foreground;
  c.textBaseline = 'top';
  let y = pad;
  for (const line of title) {
    c.fillText(line, pad, y);
    y += lh;
  }
  c.font = `${fs}px ${t.fontFamily}`;
  c.fillStyle = t.muted;
  for (const line of sub) {
    c.fillText(line, pad, y);
    y += lh;
  }
  y += 8;
  const pic = document.createElement('canvas');
  pic.width = W;
  pic.height = H;
  p.draw(pic);
  const x0 = Math.round((width - W) / 2);
  c.drawImage(pic, x0, y);
  y += H + 12;
  if (r) {
    const { scale, fmt } = r;
    const barW = Math.min(W, 320);
    const bx = Math.round((width - barW) / 2);
    const grad = c.createLinearGradient(bx, 0, bx + barW, 0);
    for (const [o, col] of scale.stops()) grad.addColorStop(o, col);
    c.fillStyle = grad;
    c.fillRect(bx, y, barW, 14);
    c.strokeStyle = t.foreground;
    c.lineWidth = 1;
    c.strokeRect(bx + 0.5, y + 0.5, barW - 1, 13);
    y += 20;
    c.fillStyle = t.foreground;
    c.textAlign = 'left';
    c.fillText(fmt(scale.lo), bx, y);
    c.textAlign = 'right';
    c.fillText(scale.kind === 'diverging' ? `+${fmt(scale.hi)}` : fmt(scale.hi), bx + barW, y);
    c.textAlign = 'center';
    c.fillText(scale.kind === 'diverging' ? '0  weight' : 'weight', bx + barW / 2, y);
    c.textAlign = 'left';
    y += lh;
    c.fillStyle = t.muted;
    for (const line of foot) {
      c.fillText(line, pad, y);
      y += lh;
    }
  }
  return out.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
}
