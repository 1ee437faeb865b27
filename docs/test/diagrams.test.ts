import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diagrams, renderDiagram } from '../scripts/diagram.js';

describe('the diagrams', () => {
  it('are committed exactly as their sources render (run `pnpm --filter @mesh/docs diagrams`)', () => {
    const all = diagrams();
    expect(all.length).toBeGreaterThan(0);
    for (const d of all) expect(readFileSync(d.svgPath, 'utf8'), d.svgPath).toBe(d.svg);
  });

  it('draw every node and every edge label of the source', () => {
    const svg = renderDiagram({
      title: 'a & b',
      nodes: [
        { id: 'a', label: 'A <1>', col: 0, row: 0 },
        { id: 'b', label: 'B', detail: '@mesh/b', col: 1, row: 0, kind: 'app' },
      ],
      edges: [{ from: 'a', to: 'b', label: 'hop', style: 'dashed' }],
    });
    expect(svg).toContain('<title>a &amp; b</title>');
    expect(svg).toContain('>A &lt;1&gt;</text>');
    expect(svg).toContain('>@mesh/b</text>');
    expect(svg).toContain('>hop</text>');
    expect(svg.match(/<line /g)).toHaveLength(1);
    expect(svg).toContain('stroke-dasharray="5 4"');
  });

  it('refuses an edge to a node that does not exist', () => {
    expect(() =>
      renderDiagram({
        title: 't',
        nodes: [{ id: 'a', label: 'A', col: 0, row: 0 }],
        edges: [{ from: 'a', to: 'x' }],
      }),
    ).toThrow(/unknown node x/);
  });
});
