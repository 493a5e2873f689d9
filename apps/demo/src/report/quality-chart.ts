import { writeFile } from 'node:fs/promises';

import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

import type { EvalRow } from '../eval/run-eval.js';

/**
 * Held-out perplexity against measured speedup: one panel per skipping
 * method, one line per checkpoint, each line starting at its full-depth point.
 * Rendered by Vega-Lite to SVG, and from the SVG to PNG by resvg.
 */
export async function writeQualityChart(rows: readonly EvalRow[], prefix: string, title: string): Promise<{ svg: string; png: string }> {
  const methods = [...new Set(rows.filter((r) => r.policy !== 'full').map((r) => r.policy))];
  const values = methods.flatMap((method) =>
    rows
      .filter((r) => r.policy === method || r.policy === 'full')
      .map((r) => ({ method, checkpoint: r.model, speedup: r.realSpeedup, perplexity: r.perplexity, target: r.policy === 'full' ? 'full depth' : `${r.target}x` })),
  );
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values },
    facet: { column: { field: 'method', type: 'nominal', sort: methods, title: null } },
    spec: {
      width: 260,
      height: 240,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'speedup', type: 'quantitative', title: 'measured speedup over full depth (×)', scale: { zero: false } },
            y: { field: 'perplexity', type: 'quantitative', title: 'held-out perplexity', scale: { type: 'log' } },
            color: { field: 'checkpoint', type: 'nominal', title: 'checkpoint' },
            order: { field: 'speedup', type: 'quantitative' },
          },
        },
        {
          mark: { type: 'text', dx: 12, dy: -8, fontSize: 9 },
          encoding: {
            x: { field: 'speedup', type: 'quantitative' },
            y: { field: 'perplexity', type: 'quantitative' },
            text: { field: 'target' },
            color: { field: 'checkpoint', type: 'nominal' },
          },
        },
      ],
    },
    config: { font: 'DejaVu Sans', background: 'white' },
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  const png = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' }, fitTo: { mode: 'zoom', value: 2 } }).render().asPng();
  const files = { svg: `${prefix}.svg`, png: `${prefix}.png` };
  await writeFile(files.svg, svg);
  await writeFile(files.png, png);
  return files;
}
