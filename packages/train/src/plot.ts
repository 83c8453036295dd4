// Charts as SVG, rendered by Vega-Lite/Vega in Node without a browser or canvas.

export interface LinePoint {
  readonly step: number;
  readonly value: number;
  /** Which curve the point belongs to (e.g. "train loss", "val QF MAE"). */
  readonly series: string;
}

/** Loss curves: one panel per series over steps, each with its own y scale; validation points are marked. */
export async function lineChartSvg(points: readonly LinePoint[], title: string): Promise<string> {
  const encoding = {
    x: { field: 'step', type: 'quantitative', title: 'step' },
    y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
    color: { field: 'series', type: 'nominal', legend: null },
  };
  return renderSvg({
    title,
    data: { values: points },
    facet: { row: { field: 'series', type: 'nominal', title: null } },
    spec: {
      width: 560,
      height: 160,
      layer: [
        { mark: { type: 'line', strokeWidth: 1.2 }, encoding },
        { transform: [{ filter: "indexof(datum.series, 'val') === 0" }], mark: { type: 'point', filled: true, size: 30 }, encoding },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  });
}

export interface ScatterPoint {
  readonly x: number;
  readonly y: number;
  /** Colour (quantitative, e.g. the JPEG quality). */
  readonly value: number;
}

/** A 2-D scatter coloured by a quantitative value (a projection of embeddings coloured by QF). */
export async function scatterSvg(points: readonly ScatterPoint[], title: string, valueName: string): Promise<string> {
  return renderSvg({
    title,
    data: { values: points },
    mark: { type: 'circle', size: 18, opacity: 0.8 },
    encoding: {
      x: { field: 'x', type: 'quantitative', axis: null },
      y: { field: 'y', type: 'quantitative', axis: null },
      color: { field: 'value', type: 'quantitative', title: valueName, scale: { scheme: 'turbo' } },
    },
    width: 520,
    height: 520,
  });
}

async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vegaLite.compile({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white', ...spec } as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterise an SVG (e.g. a chart above) to PNG bytes with resvg, using the system's fonts for text. */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const { Resvg } = await import('@resvg/resvg-js');
  return new Resvg(svg, { fitTo: { mode: 'zoom', value: scale }, background: 'white' }).render().asPng();
}
