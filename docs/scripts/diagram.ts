/**
 * Renders the diagrams in `docs/diagrams/*.json` to `docs/images/*.svg`: boxes on a grid,
 * groups drawn around their members, straight arrows with labels. Deterministic output, no
 * browser, no network, so a test can check the committed SVG matches its source.
 *
 *   pnpm --filter @mesh/docs diagrams     # rewrite every SVG
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..');
export const diagramsDir = join(docs, 'diagrams');
export const imagesDir = join(docs, 'images');

export interface DiagramNode {
  id: string;
  label: string;
  /** Second line, smaller: usually the package that owns the box. */
  detail?: string;
  col: number;
  row: number;
  kind?: 'app' | 'mesh' | 'control' | 'observe';
}

export interface DiagramEdge {
  from: string;
  to: string;
  label?: string;
  style?: 'solid' | 'dashed' | 'bold';
  /** Where the label sits relative to the line's middle. */
  labelSide?: 'above' | 'below' | 'left' | 'right';
}

export interface Diagram {
  title: string;
  grid?: { colWidth?: number; rowHeight?: number; boxWidth?: number; boxHeight?: number };
  groups?: { label: string; nodes: string[] }[];
  nodes: DiagramNode[];
  edges: DiagramEdge[];
}

const FILL = { app: '#f3f4f6', mesh: '#dbeafe', control: '#fef3c7', observe: '#dcfce7' };
const STROKE = { app: '#6b7280', mesh: '#1d4ed8', control: '#b45309', observe: '#15803d' };
const FONT =
  'font-family="ui-sans-serif, system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const CHAR_WIDTH = 6.6; // at 12px: close enough to size label backgrounds

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const n = (v: number) => String(Math.round(v * 10) / 10);

export function renderDiagram(d: Diagram): string {
  const colWidth = d.grid?.colWidth ?? 190;
  const rowHeight = d.grid?.rowHeight ?? 130;
  const boxW = d.grid?.boxWidth ?? 150;
  const boxH = d.grid?.boxHeight ?? 56;
  const margin = 40;
  const top = 50; // room for the title
  const byId = new Map(d.nodes.map((node) => [node.id, node]));
  for (const e of d.edges) {
    for (const id of [e.from, e.to])
      if (!byId.has(id)) throw new Error(`edge names unknown node ${id}`);
  }
  const cx = (node: DiagramNode) => margin + node.col * colWidth + boxW / 2;
  const cy = (node: DiagramNode) => top + margin + node.row * rowHeight + boxH / 2;
  const maxCol = Math.max(...d.nodes.map((x) => x.col));
  const maxRow = Math.max(...d.nodes.map((x) => x.row));
  const width = 2 * margin + maxCol * colWidth + boxW;
  const height = top + 2 * margin + maxRow * rowHeight + boxH;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${n(width)} ${n(height)}" width="${n(width)}" height="${n(height)}" role="img" aria-label="${esc(d.title)}">`,
    `<title>${esc(d.title)}</title>`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#374151"/></marker></defs>',
    `<rect x="0" y="0" width="${n(width)}" height="${n(height)}" fill="#ffffff"/>`,
    `<text x="${n(margin)}" y="${n(top - 12)}" font-size="16" font-weight="600" fill="#111827" ${FONT}>${esc(d.title)}</text>`,
  ];

  for (const g of d.groups ?? []) {
    const members = g.nodes.map((id) => {
      const node = byId.get(id);
      if (!node) throw new Error(`group ${g.label} names unknown node ${id}`);
      return node;
    });
    const pad = 14;
    const x0 = Math.min(...members.map((m) => cx(m) - boxW / 2)) - pad;
    const x1 = Math.max(...members.map((m) => cx(m) + boxW / 2)) + pad;
    const y0 = Math.min(...members.map((m) => cy(m) - boxH / 2)) - pad;
    const y1 = Math.max(...members.map((m) => cy(m) + boxH / 2)) + pad + 14;
    out.push(
      `<rect x="${n(x0)}" y="${n(y0)}" width="${n(x1 - x0)}" height="${n(y1 - y0)}" rx="10" fill="none" stroke="#9ca3af" stroke-dasharray="6 4"/>`,
      `<text x="${n(x0 + 10)}" y="${n(y1 - 6)}" font-size="12" fill="#4b5563" ${FONT}>${esc(g.label)}</text>`,
    );
  }

  // Edges under boxes; labels drawn last so nothing hides them.
  const labels: string[] = [];
  for (const e of d.edges) {
    const a = byId.get(e.from) as DiagramNode;
    const b = byId.get(e.to) as DiagramNode;
    const [x1, y1] = boxExit(cx(a), cy(a), cx(b), cy(b), boxW, boxH);
    const [x2, y2] = boxExit(cx(b), cy(b), cx(a), cy(a), boxW, boxH);
    const dash = e.style === 'dashed' ? ' stroke-dasharray="5 4"' : '';
    const w = e.style === 'bold' ? 2.5 : 1.5;
    out.push(
      `<line x1="${n(x1)}" y1="${n(y1)}" x2="${n(x2)}" y2="${n(y2)}" stroke="#374151" stroke-width="${w}"${dash} marker-end="url(#arrow)"/>`,
    );
    if (e.label) {
      const side = e.labelSide ?? (Math.abs(y2 - y1) < 1 ? 'above' : 'right');
      const mx = (x1 + x2) / 2;
      const my = (y1 + y2) / 2;
      const tw = e.label.length * CHAR_WIDTH;
      const [lx, ly, anchor] =
        side === 'above'
          ? [mx, Math.abs(y2 - y1) < 1 ? my - boxH / 2 - 6 : my - 8, 'middle']
          : side === 'below'
            ? [mx, my + 17, 'middle']
            : side === 'left'
              ? [mx - 6, my + 4, 'end']
              : [mx + 6, my + 4, 'start'];
      const bx = anchor === 'middle' ? lx - tw / 2 : anchor === 'end' ? lx - tw : lx;
      labels.push(
        `<rect x="${n(bx - 3)}" y="${n(ly - 12)}" width="${n(tw + 6)}" height="16" rx="3" fill="#ffffff" fill-opacity="0.9"/>`,
        `<text x="${n(lx)}" y="${n(ly)}" font-size="12" text-anchor="${anchor}" fill="#111827" ${FONT}>${esc(e.label)}</text>`,
      );
    }
  }

  for (const node of d.nodes) {
    const kind = node.kind ?? 'mesh';
    const x = cx(node) - boxW / 2;
    const y = cy(node) - boxH / 2;
    out.push(
      `<rect x="${n(x)}" y="${n(y)}" width="${n(boxW)}" height="${n(boxH)}" rx="8" fill="${FILL[kind]}" stroke="${STROKE[kind]}" stroke-width="1.5"/>`,
      `<text x="${n(cx(node))}" y="${n(cy(node) + (node.detail ? -4 : 5))}" font-size="13" font-weight="600" text-anchor="middle" fill="#111827" ${FONT}>${esc(node.label)}</text>`,
    );
    if (node.detail) {
      out.push(
        `<text x="${n(cx(node))}" y="${n(cy(node) + 14)}" font-size="11" text-anchor="middle" fill="#374151" ${FONT}>${esc(node.detail)}</text>`,
      );
    }
  }
  out.push(...labels, '</svg>', '');
  return out.join('\n');
}

/** Where the line from a box's centre towards (tx, ty) leaves the box. */
function boxExit(
  x: number,
  y: number,
  tx: number,
  ty: number,
  w: number,
  h: number,
): [number, number] {
  const dx = tx - x;
  const dy = ty - y;
  if (dx === 0 && dy === 0) return [x, y];
  const sx = dx === 0 ? Number.POSITIVE_INFINITY : w / 2 / Math.abs(dx);
  const sy = dy === 0 ? Number.POSITIVE_INFINITY : h / 2 / Math.abs(dy);
  const s = Math.min(sx, sy);
  return [x + dx * s, y + dy * s];
}

/** Every diagram source and the SVG it renders to. */
export function diagrams(): { source: string; svgPath: string; svg: string }[] {
  return readdirSync(diagramsDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const source = join(diagramsDir, f);
      const diagram = JSON.parse(readFileSync(source, 'utf8')) as Diagram;
      return {
        source,
        svgPath: join(imagesDir, `${basename(f, '.json')}.svg`),
        svg: renderDiagram(diagram),
      };
    });
}

if (process.argv.includes('--write')) {
  for (const d of diagrams()) {
    writeFileSync(d.svgPath, d.svg);
    console.log(`wrote ${d.svgPath}`);
  }
}
