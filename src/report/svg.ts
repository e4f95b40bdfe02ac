// Tiny inline-SVG plotting for report.html: line charts, grouped bars and overlaid histograms.
// No libraries and no scripts, so the report opens from disk in any browser. Every function returns
// a complete <svg> element string; all text is XML-escaped.

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

const WIDTH = 560;
const H = 300;
const M = { left: 56, right: 16, top: 32, bottom: 44 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"];

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

export function color(i: number): string {
  return COLORS[i % COLORS.length]!;
}

/** "Nice" tick values covering [lo, hi] (1-2-5 steps). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi === lo) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  // Each tick is an integer multiple of the step, rounded to the step's decimals: adding the step
  // up would carry float error (-0.3 + 0.1 + 0.1 + 0.1 = -5.6e-17, not 0).
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  const tick = (k: number) => Number((k * step).toFixed(decimals)) || 0;
  const ticks: number[] = [];
  let k = Math.floor(lo / step);
  while (tick(k) <= hi + step * 1e-9) ticks.push(tick(k++));
  if (ticks[ticks.length - 1]! < hi) ticks.push(tick(k));
  return ticks;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(1);
  return Number(v.toPrecision(4)).toString();
}

interface Frame {
  x: (v: number) => number;
  y: (v: number) => number;
  parts: string[];
}

/** Axes, grid, ticks, title and labels; returns coordinate maps for the plot area. */
function frame(
  title: string,
  xLabel: string,
  yLabel: string,
  xTicks: number[],
  yTicks: number[],
  xTickLabels?: string[],
  W = WIDTH,
): Frame {
  const x0 = xTicks[0]!,
    x1 = xTicks[xTicks.length - 1]!;
  const y0 = yTicks[0]!,
    y1 = yTicks[yTicks.length - 1]!;
  const pw = W - M.left - M.right,
    ph = H - M.top - M.bottom;
  const x = (v: number) => M.left + (x1 === x0 ? pw / 2 : ((v - x0) / (x1 - x0)) * pw);
  const y = (v: number) => M.top + ph - (y1 === y0 ? ph / 2 : ((v - y0) / (y1 - y0)) * ph);
  const parts: string[] = [];
  parts.push(
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  );
  for (const t of yTicks) {
    parts.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e5e5e5"/>`,
    );
    parts.push(
      `<text x="${M.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" font-size="11">${fmt(t)}</text>`,
    );
  }
  xTicks.forEach((t, i) => {
    const label = xTickLabels ? (xTickLabels[i] ?? "") : fmt(t);
    parts.push(
      `<text x="${x(t).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="11">${escapeXml(label)}</text>`,
    );
  });
  parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`);
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`);
  parts.push(
    `<text x="${M.left + pw / 2}" y="${H - 6}" text-anchor="middle" font-size="12">${escapeXml(xLabel)}</text>`,
  );
  parts.push(
    `<text x="14" y="${M.top + ph / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${M.top + ph / 2})">${escapeXml(yLabel)}</text>`,
  );
  return { x, y, parts };
}

function legend(names: string[]): string {
  return names
    .map((n, i) => {
      const lx = M.left + 8 + i * 130,
        ly = M.top + 4;
      return `<rect x="${lx}" y="${ly}" width="10" height="10" fill="${color(i)}"/><text x="${lx + 14}" y="${ly + 9}" font-size="11">${escapeXml(n)}</text>`;
    })
    .join("");
}

function wrap(parts: string[], aria: string, W = WIDTH): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(aria)}" font-family="sans-serif">${parts.join("")}</svg>`;
}

/** A placeholder panel for a plot that has no data, saying why. */
export function emptyPlot(title: string, reason: string): string {
  const W = WIDTH;
  return wrap(
    [
      `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
      `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="#fafafa" stroke="#ccc"/>`,
      `<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="12" fill="#666">${escapeXml(reason)}</text>`,
    ],
    title,
  );
}

/** Line chart of one or more series (loss curves). Non-finite points are dropped. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const clean = series
    .map((s) => ({ ...s, points: s.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b)) }))
    .filter((s) => s.points.length > 0);
  if (clean.length === 0) return emptyPlot(title, "no data");
  const xs = clean.flatMap((s) => s.points.map((p) => p[0]));
  const ys = clean.flatMap((s) => s.points.map((p) => p[1]));
  const f = frame(
    title,
    xLabel,
    yLabel,
    niceTicks(Math.min(...xs), Math.max(...xs)),
    niceTicks(Math.min(...ys), Math.max(...ys)),
  );
  clean.forEach((s, i) => {
    const d = s.points.map(([a, b], k) => `${k === 0 ? "M" : "L"}${f.x(a).toFixed(1)},${f.y(b).toFixed(1)}`).join(" ");
    f.parts.push(`<path d="${d}" fill="none" stroke="${color(i)}" stroke-width="1.8"/>`);
    if (s.points.length <= 30)
      for (const [a, b] of s.points)
        f.parts.push(`<circle cx="${f.x(a).toFixed(1)}" cy="${f.y(b).toFixed(1)}" r="2.5" fill="${color(i)}"/>`);
  });
  f.parts.push(legend(clean.map((s) => s.name)));
  return wrap(f.parts, title);
}

/**
 * Grouped bar chart: one group per category, one bar per series. `minSlot` widens the chart so
 * that each category gets at least that many pixels (long labels side by side).
 */
export function barChart(
  title: string,
  yLabel: string,
  categories: string[],
  series: Array<{ name: string; values: number[] }>,
  minSlot = 0,
): string {
  const vals = series.flatMap((s) => s.values.filter(Number.isFinite));
  if (categories.length === 0 || vals.length === 0) return emptyPlot(title, "no data");
  const W = Math.max(WIDTH, M.left + M.right + minSlot * (categories.length + 1));
  const yTicks = niceTicks(Math.min(0, ...vals), Math.max(0, ...vals)); // bars start at 0
  const xTicks = categories.map((_, i) => i);
  const f = frame(title, "", yLabel, [-0.5, ...xTicks, categories.length - 0.5], yTicks, ["", ...categories, ""], W);
  const slot = (W - M.left - M.right) / (categories.length + 1);
  const bw = (slot * 0.8) / series.length;
  series.forEach((s, si) => {
    s.values.forEach((v, ci) => {
      if (!Number.isFinite(v)) return;
      const cx = f.x(ci) - (bw * series.length) / 2 + si * bw;
      const top = f.y(Math.max(0, v)),
        base = f.y(Math.min(0, v));
      f.parts.push(
        `<rect x="${cx.toFixed(1)}" y="${top.toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(0.5, base - top).toFixed(1)}" fill="${color(si)}"><title>${escapeXml(`${s.name} ${categories[ci]}: ${fmt(v)}`)}</title></rect>`,
      );
    });
  });
  if (series.length > 1) f.parts.push(legend(series.map((s) => s.name)));
  return wrap(f.parts, title, W);
}

/** Bin counts of `values` over `edges` (edges.length - 1 bins, last bin closed). */
export function binCounts(values: number[], edges: number[]): number[] {
  const counts = new Array<number>(Math.max(0, edges.length - 1)).fill(0);
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    for (let b = 0; b < counts.length; b++) {
      const last = b === counts.length - 1;
      if (v >= edges[b]! && (v < edges[b + 1]! || (last && v <= edges[b + 1]!))) {
        counts[b]!++;
        break;
      }
    }
  }
  return counts;
}

/** Overlaid step histograms of several samples on shared bins (PPL of agreeing vs disagreeing sides). */
export function histogram(
  title: string,
  xLabel: string,
  series: Array<{ name: string; values: number[] }>,
  bins = 20,
): string {
  const all = series.flatMap((s) => s.values.filter(Number.isFinite));
  if (all.length === 0) return emptyPlot(title, "no data");
  const lo = Math.min(...all);
  let hi = Math.max(...all);
  if (hi === lo) hi = lo + 1;
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
  const counts = series.map((s) => binCounts(s.values, edges));
  const f = frame(title, xLabel, "count", niceTicks(lo, hi), niceTicks(0, Math.max(1, ...counts.flat())));
  counts.forEach((c, si) => {
    let d = `M${f.x(edges[0]!).toFixed(1)},${f.y(0).toFixed(1)}`;
    c.forEach((n, b) => {
      d += ` L${f.x(edges[b]!).toFixed(1)},${f.y(n).toFixed(1)} L${f.x(edges[b + 1]!).toFixed(1)},${f.y(n).toFixed(1)}`;
    });
    d += ` L${f.x(edges[bins]!).toFixed(1)},${f.y(0).toFixed(1)} Z`;
    f.parts.push(`<path d="${d}" fill="${color(si)}" fill-opacity="0.25" stroke="${color(si)}" stroke-width="1.5"/>`);
  });
  f.parts.push(legend(series.map((s) => `${s.name} (n=${s.values.filter(Number.isFinite).length})`)));
  return wrap(f.parts, title);
}
