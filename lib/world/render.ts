/**
 * Renderer: image tokens → SVG for people to look at (report.html embeds these inline). PNG would
 * need an encoder dependency; SVG needs none and stays sharp at any size.
 */
import { GRID_SIZE, decodeToken, type Color, type Shape } from './scene.js';

const FILL: Record<Color, string> = {
  red: '#e0413a',
  green: '#3aa655',
  blue: '#3a6fe0',
  yellow: '#e8c02a',
  purple: '#9a4ad6',
};

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function shapeSvg(shape: Shape, x: number, y: number, s: number, fill: string): string {
  const cx = x + s / 2;
  const cy = y + s / 2;
  const r = s * 0.36;
  if (shape === 'circle') return `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fill}"/>`;
  if (shape === 'square')
    return `<rect x="${cx - r}" y="${cy - r}" width="${2 * r}" height="${2 * r}" fill="${fill}"/>`;
  if (shape === 'triangle')
    return `<polygon points="${cx},${cy - r} ${cx + r},${cy + r * 0.8} ${cx - r},${cy + r * 0.8}" fill="${fill}"/>`;
  const pts: string[] = [];
  for (let i = 0; i < 10; i++) {
    const a = (Math.PI / 5) * i - Math.PI / 2;
    const rr = i % 2 === 0 ? r : r * 0.45;
    pts.push(`${(cx + rr * Math.cos(a)).toFixed(1)},${(cy + rr * Math.sin(a)).toFixed(1)}`);
  }
  return `<polygon points="${pts.join(' ')}" fill="${fill}"/>`;
}

export interface RenderOptions {
  /** Cell size in px (default 24). */
  cellSize?: number;
  /** Border color: e.g. green for an externally verified image, red for a wrong one. */
  border?: string;
  /** Tooltip (SVG <title>). */
  title?: string;
}

/** One image as a standalone SVG element. */
export function renderSvg(tokens: ArrayLike<number>, options: RenderOptions = {}): string {
  const s = options.cellSize ?? 24;
  const size = s * GRID_SIZE;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size + 4}" height="${size + 4}" viewBox="-2 -2 ${size + 4} ${size + 4}">`,
  ];
  if (options.title) parts.push(`<title>${escapeXml(options.title)}</title>`);
  parts.push(
    `<rect x="-1" y="-1" width="${size + 2}" height="${size + 2}" fill="#fafafa" stroke="${options.border ?? '#999'}" stroke-width="2"/>`,
  );
  for (let i = 1; i < GRID_SIZE; i++)
    parts.push(`<path d="M${i * s} 0V${size}M0 ${i * s}H${size}" stroke="#e4e4e4" stroke-width="1"/>`);
  for (let cell = 0; cell < tokens.length; cell++) {
    const obj = decodeToken(tokens[cell]);
    if (!obj) continue;
    const x = (cell % GRID_SIZE) * s;
    const y = Math.floor(cell / GRID_SIZE) * s;
    parts.push(shapeSvg(obj.shape, x, y, s, FILL[obj.color]));
  }
  parts.push('</svg>');
  return parts.join('');
}
