// report.html: a single self-contained page (inline CSS and SVG, no scripts, no server) with
// Table 1, the results table and a chart of MSR-Rec beside the baselines, the ablations, the α/β sweep, loss curves,
// GRPO's curves when the rl stage ran,
// the PPL distributions of agreeing vs disagreeing sides, and reasoning examples side by side.
import {
  GPTSCORE_NOTE,
  type MetricsFile,
  type MetricsRow,
  type PredictionRecord,
  type TrainLogLine,
} from "../run/results.js";
import { barChart, emptyPlot, escapeXml as esc, histogram, lineChart, type Series } from "./svg.js";
import type { GrpoLogLine } from "../train/grpo.js";

export interface ReportData {
  title: string;
  /** Table-1 numbers (users, items, interactions, density, plus raw/kcore rows when present). */
  stats: Record<string, unknown>;
  metrics: MetricsFile;
  trainLog: TrainLogLine[];
  /** The rl stage's log (rl.jsonl): empty when GRPO did not run. */
  rlLog?: GrpoLogLine[];
  predictions: PredictionRecord[];
  /** The resolved run config, shown folded at the end. */
  config?: unknown;
  /** Reasoning examples shown side by side. */
  examples?: number;
}

function fmt(v: number | undefined, d = 4): string {
  return v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(d);
}

function statsRow(name: string, s: unknown): string | null {
  if (!s || typeof s !== "object") return null;
  const o = s as Record<string, unknown>;
  if (typeof o.users !== "number") return null;
  const n = (k: string) => (typeof o[k] === "number" ? (o[k] as number) : Number.NaN);
  return `<tr><td>${esc(name)}</td><td>${n("users")}</td><td>${n("items")}</td><td>${n("interactions")}</td><td>${fmt(n("density"), 6)}</td></tr>`;
}

function statsTable(stats: Record<string, unknown>): string {
  const rows = [statsRow("raw", stats.raw), statsRow("k-core", stats.kcore), statsRow("prepared", stats)].filter(
    (r): r is string => r !== null,
  );
  const source = typeof stats.source === "string" ? `<p class="note">source: ${esc(stats.source)}</p>` : "";
  return `<table><tr><th></th><th>#users</th><th>#items</th><th>#interactions</th><th>density</th></tr>${rows.join("")}</table>${source}`;
}

function metricsTable(rows: MetricsRow[]): string {
  if (rows.length === 0) return `<p class="note">no rows</p>`;
  const head =
    "<tr><th>model</th><th>HitRatio@1</th><th>HR@1 (valid)</th><th>ValidRatio</th><th>strict HR@1</th><th>METEOR</th><th>BERTScore</th><th>GPTScore (log-prob)</th><th>note</th></tr>";
  const body = rows
    .map(
      (r) =>
        `<tr class="${r.kind}"><td>${esc(r.name)}</td><td>${fmt(r.hitRatio)}</td><td>${fmt(r.hitRatioValid)}</td><td>${fmt(r.validRatio)}</td><td>${fmt(r.strictHitRatio)}</td><td>${fmt(r.meteor)}</td><td>${fmt(r.bertscore)}</td><td>${fmt(r.gptscore, 3)}</td><td>${esc(r.note ?? "")}</td></tr>`,
    )
    .join("");
  return `<table>${head}${body}</table>`;
}

function lossPlots(log: TrainLogLine[]): string[] {
  const variants = [...new Set(log.map((l) => l.variant))];
  const steps: Series[] = variants.map((v) => ({
    name: v,
    points: log
      .filter((l) => l.type === "step" && l.variant === v)
      .map((l, i) => [i + 1, (l as { loss: number }).loss] as [number, number]),
  }));
  const epochs = log.filter((l): l is Extract<TrainLogLine, { type: "epoch" }> => l.type === "epoch");
  const vLoss: Series[] = variants.flatMap((v) => [
    {
      name: `${v} train`,
      points: epochs.filter((e) => e.variant === v).map((e) => [e.epoch, e.trainLoss] as [number, number]),
    },
    {
      name: `${v} valid`,
      points: epochs.filter((e) => e.variant === v).map((e) => [e.epoch, e.validLoss] as [number, number]),
    },
  ]);
  const vHit: Series[] = variants.map((v) => ({
    name: v,
    points: epochs.filter((e) => e.variant === v).map((e) => [e.epoch, e.validHitRatio] as [number, number]),
  }));
  if (log.length === 0) return [emptyPlot("Training loss", "no training log (train stage not run)")];
  return [
    lineChart("Training loss per step", "step", "loss (α·rea + β·rec)", steps),
    lineChart("Train vs validation loss per epoch", "epoch", "loss", vLoss),
    lineChart("Validation HitRatio@1 per epoch", "epoch", "HitRatio@1", vHit),
  ];
}

/** GRPO's curves over steps: reward, KL to the SFT adapter, entropy, response length, validation HitRatio@1. */
function rlPlots(log: readonly GrpoLogLine[]): string[] {
  const steps = log.filter((l): l is Extract<GrpoLogLine, { type: "step" }> => l.type === "step");
  const valid = log.filter((l): l is Extract<GrpoLogLine, { type: "valid" }> => l.type === "valid");
  const over = (name: string, f: (l: (typeof steps)[number]) => number | null): Series => ({
    name,
    points: steps.map((l) => [l.step, f(l) ?? Number.NaN] as [number, number]),
  });
  return [
    lineChart("Reward per step (mean over rollouts)", "step", "reward", [
      over("reward", (l) => l.reward),
      over("hit rate", (l) => l.hitRate),
      over("valid rate", (l) => l.validRate),
    ]),
    steps.some((l) => l.kl !== null)
      ? lineChart("KL to the SFT adapter per step", "step", "KL (k3, mean per token)", [over("KL", (l) => l.kl)])
      : emptyPlot("KL to the SFT adapter per step", "not measured: rl.beta is 0, so there is no reference policy"),
    lineChart("Entropy per step", "step", "entropy (nats per token)", [over("entropy", (l) => l.entropy)]),
    lineChart("Response length per step", "step", "generated tokens", [over("length", (l) => l.length)]),
    lineChart("Validation HitRatio@1 (both sides, greedy)", "step", "HitRatio@1", [
      { name: "validation", points: valid.map((l) => [l.step, l.hitRatio] as [number, number]) },
    ]),
  ];
}

function sweepPlots(m: MetricsFile): string[] {
  const rows = m.rows.filter(
    (r) =>
      (r.kind === "sweep" || r.kind === "msr") &&
      r.alpha !== undefined &&
      r.beta !== undefined &&
      r.name.startsWith("MSR-Rec") &&
      !r.name.includes("("),
  );
  const byPair = new Map<string, MetricsRow>();
  for (const r of rows) byPair.set(`${r.alpha}/${r.beta}`, r);
  const pairs = [...byPair.keys()].sort((a, b) => Number(a.split("/")[0]) - Number(b.split("/")[0]));
  if (pairs.length < 2) return [emptyPlot("α/β sweep", "sweep not run (ablations.sweep is off or skipped for budget)")];
  return [
    barChart("HitRatio@1 by α/β", "HitRatio@1", pairs, [
      { name: "HitRatio@1", values: pairs.map((p) => byPair.get(p)!.hitRatio) },
    ]),
    barChart("GPTScore by α/β (log-prob, not the paper's scale)", "GPTScore (mean log-prob)", pairs, [
      { name: "GPTScore", values: pairs.map((p) => byPair.get(p)!.gptscore ?? Number.NaN) },
    ]),
  ];
}

/** A row's name short enough to sit under its bar. */
function shortName(r: MetricsRow): string {
  if (r.name.startsWith("Teacher")) return "Teacher";
  if (r.name === "Markov (first-order)") return "Markov";
  if (r.name === "Base model (zero-shot)") return "Base model";
  if (r.name === "MSR-Rec (Eq. 3 literal)") return "MSR-Rec Eq. 3";
  return r.name;
}

/** MSR-Rec beside every baseline (random, popularity, Markov, teacher, TALLRec, the base model). */
function comparisonPlot(m: MetricsFile): string {
  const rows = [...m.rows.filter((r) => r.kind === "baseline"), ...m.rows.filter((r) => r.kind === "msr")];
  return barChart(
    "MSR-Rec beside the baselines",
    "ratio",
    rows.map(shortName),
    [
      { name: "HitRatio@1", values: rows.map((r) => r.hitRatio) },
      { name: "ValidRatio", values: rows.map((r) => r.validRatio) },
    ],
    84,
  );
}

function ablationPlot(m: MetricsFile): string {
  const rows = m.rows.filter((r) => r.kind === "ablation" || r.kind === "msr");
  return barChart(
    "Ablations: HitRatio@1 and ValidRatio",
    "ratio",
    rows.map((r) => r.name.replace(/^MSR-Rec\s*/, "") || "fused"),
    [
      { name: "HitRatio@1", values: rows.map((r) => r.hitRatio) },
      { name: "ValidRatio", values: rows.map((r) => r.validRatio) },
    ],
  );
}

function pplPlot(preds: PredictionRecord[]): string {
  // PPLs span orders of magnitude (a barely trained model reaches the vocabulary size), so the
  // histogram is over log10 PPL.
  const log10 = (xs: number[]) => xs.filter((x) => Number.isFinite(x) && x > 0).map((x) => Math.log10(x));
  const split = (caseOf: (p: PredictionRecord) => string | undefined) => ({
    agree: log10(preds.filter((p) => caseOf(p) === "agree").flatMap((p) => [p.user_side.ppl, p.item_side.ppl])),
    disagree: log10(preds.filter((p) => caseOf(p) === "disagree").flatMap((p) => [p.user_side.ppl, p.item_side.ppl])),
  });
  let s = split((p) => p.fused.case);
  let title = "Reasoning PPL by agreement";
  if (s.agree.length + s.disagree.length === 0) {
    // No user had two valid free-form answers: judge agreement on the constrained answers,
    // which always name a candidate (same reasonings, same PPLs).
    s = split((p) => p.constrained?.case);
    title += " (constrained answers)";
  }
  if (s.agree.length + s.disagree.length === 0) return emptyPlot(title, "no user had two valid answers");
  return histogram(title, "log10 PPL of the side's reasoning", [
    { name: "agree", values: s.agree },
    { name: "disagree", values: s.disagree },
  ]);
}

function fusionCounts(preds: PredictionRecord[]): string {
  const counts = new Map<string, { n: number; hits: number }>();
  for (const p of preds) {
    const c = counts.get(p.fused.case) ?? { n: 0, hits: 0 };
    c.n++;
    if (p.hit) c.hits++;
    counts.set(p.fused.case, c);
  }
  const rows = [...counts]
    .map(
      ([k, c]) =>
        `<tr><td>${esc(k)}</td><td>${c.n}</td><td>${c.hits}</td><td>${fmt(c.n ? c.hits / c.n : Number.NaN)}</td></tr>`,
    )
    .join("");
  return `<table><tr><th>fusion case</th><th>users</th><th>hits</th><th>hit rate</th></tr>${rows}</table>`;
}

function examples(preds: PredictionRecord[], n: number): string {
  // Prefer disagreements (the interesting case for Eq. 3), then agreements.
  const order = [...preds].sort((a, b) => Number(b.fused.case === "disagree") - Number(a.fused.case === "disagree"));
  return order
    .slice(0, n)
    .map((p) => {
      const side = (name: "user" | "item", s: PredictionRecord["user_side"]) =>
        `<div class="side${p.fused.side === name ? " kept" : ""}"><h4>${name} side ${p.fused.side === name ? "(kept)" : ""}</h4><p class="meta">choice: ${esc(s.choice ?? "(invalid)")} · PPL ${fmt(s.ppl, 3)}</p><pre>${esc(s.text)}</pre></div>`;
      return `<div class="example"><p><b>user ${esc(p.user)}</b> · ground truth: ${esc(p.groundTruth)} · fusion: ${esc(p.fused.case)} → ${esc(p.fused.choice ?? "invalid")} ${p.hit ? "✔" : "✘"}</p><div class="pair">${side("user", p.user_side)}${side("item", p.item_side)}</div></div>`;
    })
    .join("");
}

const CSS = `body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.msr td{font-weight:bold}.note{color:#666;font-size:90%}
.plots{display:flex;flex-wrap:wrap;gap:12px}.pair{display:flex;gap:12px}.side{flex:1;border:1px solid #ddd;padding:6px;min-width:0}
.side.kept{border-color:#2ca02c;background:#f3fbf3}pre{white-space:pre-wrap;font-size:85%;max-height:24em;overflow:auto}
.example{border-top:1px solid #eee;margin-top:1em}h4{margin:.2em 0}.meta{font-size:90%;color:#444;margin:.2em 0}`;

/** Renders the whole report as one HTML string. */
export function renderReport(d: ReportData): string {
  const m = d.metrics;
  const main = m.rows.filter((r) => r.kind === "baseline" || r.kind === "msr");
  const abl = m.rows.filter((r) => r.kind === "ablation" || r.kind === "msr");
  const sweep = m.rows.filter((r) => r.kind === "sweep" || r.kind === "msr");
  const skipped = m.skipped.length
    ? `<h2>Skipped / notes</h2><ul>${m.skipped.map((s) => `<li>${esc(s)}</li>`).join("")}</ul>`
    : "";
  const cfg =
    d.config === undefined
      ? ""
      : `<details><summary>run config</summary><pre>${esc(JSON.stringify(d.config, null, 2))}</pre></details>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(d.title)}</title><style>${CSS}</style></head><body>
<h1>${esc(d.title)}</h1>
<p class="note">${m.users} test users · generated ${esc(new Date().toISOString())}. HitRatio@1 = hits / all users (LLaRA's published definition); HR@1 (valid) = hits / valid answers. ${esc(GPTSCORE_NOTE)}.</p>
<h2>Dataset (Table 1)</h2>${statsTable(d.stats)}
<h2>Results (Table 2)</h2>${metricsTable(main)}<div class="plots">${comparisonPlot(m)}</div>
<h2>Ablations (Table 4)</h2>${metricsTable(abl)}<div class="plots">${ablationPlot(m)}</div>
<h2>α/β sweep (Figure 6)</h2>${metricsTable(sweep)}<div class="plots">${sweepPlots(m).join("")}</div>
<h2>Training</h2><div class="plots">${lossPlots(d.trainLog).join("")}</div>${
    d.rlLog?.length
      ? `<h2>Reinforcement refinement (GRPO)</h2><div class="plots">${rlPlots(d.rlLog).join("")}</div>`
      : ""
  }
<h2>Perplexity fusion (Eq. 3)</h2>${fusionCounts(d.predictions)}<div class="plots">${pplPlot(d.predictions)}</div>
<h2>Reasoning examples: user side vs item side</h2>${examples(d.predictions, d.examples ?? 4) || '<p class="note">no predictions</p>'}
${skipped}${cfg}
</body></html>
`;
}
