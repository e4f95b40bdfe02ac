// report.html: plot helpers against hand-checked values, a rendered report whose every plot has
// drawn marks, and (when /usr/bin/chromium exists) a headless-browser load with no errors.
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { barChart, binCounts, escapeXml, histogram, lineChart, niceTicks } from "../src/report/svg.js";
import { renderReport, type ReportData } from "../src/report/html.js";
import { fuseByPerplexity } from "../src/infer/fusion.js";
import type { MetricsRow, PredictionRecord, TrainLogLine } from "../src/run/results.js";
import { renderResultsMarkdown } from "../src/run/results.js";
import type { GrpoLogLine } from "../src/train/grpo.js";

const CHROMIUM = "/usr/bin/chromium";

/** Every <svg>…</svg> in a page with the marks it draws (paths with data, rects, circles). */
function svgs(html: string): Array<{ svg: string; marks: number; empty: boolean }> {
  return [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map(([svg]) => ({
    svg,
    marks: (
      svg.match(
        /<path d="M[^"]+"|<circle |<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#(?!fafafa)/g,
      ) ?? []
    ).length,
    empty: svg.includes('fill="#fafafa"'),
  }));
}

function fixture(): ReportData {
  const titles = ["Alpha Phone", "Beta Laptop", "Gamma Watch"];
  const predictions: PredictionRecord[] = [];
  // Deterministic sides: user i picks candidate i%3, item side picks (i*2)%3, PPLs from a formula.
  for (let i = 0; i < 30; i++) {
    const u = { choice: titles[i % 3]!, ppl: 2 + (i % 7) };
    const it = { choice: titles[(i * 2) % 3]!, ppl: 3 + ((i * 5) % 11) };
    const f = fuseByPerplexity(u, it);
    predictions.push({
      user: `u${i}`,
      groundTruth: titles[i % 2]!,
      candidates: titles,
      user_side: { reasoning: `user reasoning ${i}`, text: `user text <${i}>`, choice: u.choice, ppl: u.ppl },
      item_side: { reasoning: `item reasoning ${i}`, text: `item text & ${i}`, choice: it.choice, ppl: it.ppl },
      fused: { side: f.side, choice: f.choice, case: f.case },
      hit: f.choice === titles[i % 2],
    });
  }
  const trainLog: TrainLogLine[] = [];
  for (const variant of ["msr", "wo-reason"]) {
    for (let s = 1; s <= 20; s++)
      trainLog.push({ type: "step", variant, epoch: Math.ceil(s / 10), step: s, loss: 5 / s });
    for (let e = 1; e <= 2; e++)
      trainLog.push({
        type: "epoch",
        variant,
        epoch: e,
        trainLoss: 3 / e,
        validLoss: 3.5 / e,
        validHitRatio: 0.2 * e,
        best: e === 2,
      });
  }
  const row = (name: string, kind: MetricsRow["kind"], hr: number, extra: Partial<MetricsRow> = {}): MetricsRow => ({
    name,
    kind,
    users: 30,
    hits: hr * 30,
    valid: 30,
    hitRatio: hr,
    hitRatioValid: hr,
    validRatio: 1,
    ...extra,
  });
  return {
    title: "test run <&>",
    stats: {
      users: 30,
      items: 40,
      interactions: 300,
      density: 0.25,
      source: "synthetic",
      raw: { users: 40, items: 40, interactions: 400, density: 0.25 },
    },
    metrics: {
      dataset: "synthetic",
      users: 30,
      skipped: ["nothing really"],
      rows: [
        row("Random", "baseline", 0.17),
        row("Markov (first-order)", "baseline", 0.3),
        row("MSR-Rec", "msr", 0.5, { alpha: 0.7, beta: 0.3, meteor: 0.2 }),
        row("MSR-Rec (user)", "ablation", 0.4),
        row("MSR-Rec (item)", "ablation", 0.45),
        row("MSR-Rec α/β 0.3/0.7", "sweep", 0.3, { alpha: 0.3, beta: 0.7, gptscore: -2 }),
        row("MSR-Rec α/β 0.9/0.1", "sweep", 0.4, { alpha: 0.9, beta: 0.1, gptscore: -1.5 }),
      ],
    },
    trainLog,
    predictions,
    config: { runDir: "x" },
  };
}

describe("svg helpers", () => {
  it("niceTicks covers the range with 1-2-5 steps", () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 97)).toEqual([0, 20, 40, 60, 80, 100]);
    // Ticks are multiples of the step, exactly: stepping up from -0.4 by 0.1 gave -5.6e-17, not 0.
    expect(niceTicks(-0.35, 0)).toEqual([-0.4, -0.3, -0.2, -0.1, 0]);
    expect(niceTicks(-1e-5, 3e-5)).toEqual([-2e-5, -1e-5, 0, 1e-5, 2e-5, 3e-5]);
    expect(niceTicks(0.0012, 0.0019)).toEqual([0.0012, 0.0014, 0.0016, 0.0018, 0.002]);
    const sweep = barChart(
      "GPTScore",
      "GPTScore",
      ["0.3/0.7", "0.9/0.1"],
      [{ name: "GPTScore", values: [-0.35, -0.22] }],
    );
    const labels = [...sweep.matchAll(/text-anchor="end" font-size="11">([^<]+)</g)].map((m) => m[1]);
    expect(labels).toEqual(["-0.4", "-0.3", "-0.2", "-0.1", "0"]);
    const t = niceTicks(-0.37, 2.2);
    expect(t[0]).toBeLessThanOrEqual(-0.37);
    expect(t[t.length - 1]).toBeGreaterThanOrEqual(2.2);
  });

  it("binCounts equals a naive count and keeps the maximum in the last bin", () => {
    const values = [0, 0.1, 0.5, 0.99, 1, 1, Number.NaN, 2];
    const edges = [0, 0.5, 1];
    expect(binCounts(values, edges)).toEqual([2, 4]); // 2 is outside, NaN ignored
    const vs = Array.from({ length: 200 }, (_, i) => (i * 37) % 101);
    const es = [0, 25, 50, 75, 100];
    const naive = es
      .slice(0, -1)
      .map((lo, b) => vs.filter((v) => v >= lo && (b === es.length - 2 ? v <= es[b + 1]! : v < es[b + 1]!)).length);
    expect(binCounts(vs, es)).toEqual(naive);
  });

  it("escapes markup in labels", () => {
    expect(escapeXml(`<a href="x">&'`)).toBe("&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    expect(
      lineChart("a<b", "x", "y", [
        {
          name: "s&t",
          points: [
            [0, 1],
            [1, 2],
          ],
        },
      ]),
    ).toContain("a&lt;b");
  });

  it("draws one path per series", () => {
    const svg = histogram("h", "x", [
      { name: "a", values: [1, 2, 3] },
      { name: "b", values: [2, 2] },
    ]);
    expect((svg.match(/<path d="M/g) ?? []).length).toBe(2);
  });
});

describe("report.html", () => {
  const html = renderReport(fixture());

  it("has every section and draws every plot", () => {
    for (const h of [
      "Dataset (Table 1)",
      "Results (Table 2)",
      "Ablations (Table 4)",
      "α/β sweep (Figure 6)",
      "Training",
      "Perplexity fusion (Eq. 3)",
      "Reasoning examples",
    ])
      expect(html).toContain(h);
    const plots = svgs(html);
    expect(plots.length).toBe(8); // baselines, ablations, 2 sweep, 3 training, PPL histogram
    for (const p of plots) {
      expect(p.empty).toBe(false);
      expect(p.marks).toBeGreaterThan(0);
    }
    expect(html).not.toContain("<script");
    expect(html).toContain("test run &lt;&amp;&gt;");
    expect(html).toMatch(/user text &lt;\d+&gt;/); // examples are escaped, never raw markup
  });

  it("sets MSR-Rec beside every baseline in one chart", () => {
    const f = fixture();
    f.metrics.rows.splice(
      2,
      0,
      {
        name: "Popularity",
        kind: "baseline",
        users: 30,
        hits: 6,
        valid: 30,
        hitRatio: 0.2,
        hitRatioValid: 0.2,
        validRatio: 1,
      },
      {
        name: "Teacher zero-shot (rules-v1)",
        kind: "baseline",
        users: 30,
        hits: 24,
        valid: 30,
        hitRatio: 0.8,
        hitRatioValid: 0.8,
        validRatio: 1,
      },
      {
        name: "TALLRec",
        kind: "baseline",
        users: 30,
        hits: 3,
        valid: 15,
        hitRatio: 0.1,
        hitRatioValid: 0.2,
        validRatio: 0.5,
      },
      {
        name: "Base model (zero-shot)",
        kind: "baseline",
        users: 30,
        hits: 0,
        valid: 3,
        hitRatio: 0,
        hitRatioValid: 0,
        validRatio: 0.1,
      },
    );
    const plot = svgs(renderReport(f)).find((p) => p.svg.includes("MSR-Rec beside the baselines"))!;
    const names = ["Random", "Markov", "Popularity", "Teacher", "TALLRec", "Base model", "MSR-Rec"];
    for (const n of names) expect(plot.svg).toContain(`>${n}</text>`);
    // One bar per row and series (HitRatio@1, ValidRatio), each with its value in its tooltip.
    expect(plot.svg).toContain("<title>HitRatio@1 Teacher: 0.8</title>");
    expect(plot.svg).toContain("<title>ValidRatio TALLRec: 0.5</title>");
    expect(plot.svg).toContain("<title>HitRatio@1 MSR-Rec: 0.5</title>");
    // Wide enough that the labels do not overlap: 84 px or more per row.
    expect(Number(/width="(\d+)"/.exec(plot.svg)![1])).toBeGreaterThanOrEqual(84 * names.length);
  });

  it("counts fusion cases as the fusion rule decides them", () => {
    const f = fixture();
    const agree = f.predictions.filter((p) => p.user_side.choice === p.item_side.choice).length;
    expect(html).toContain(`<tr><td>agree</td><td>${agree}</td>`);
    expect(html).toContain(`<tr><td>disagree</td><td>${30 - agree}</td>`);
  });

  it("says why a plot is empty instead of drawing nothing", () => {
    const f = fixture();
    const bare = renderReport({
      ...f,
      trainLog: [],
      predictions: [],
      metrics: { ...f.metrics, rows: f.metrics.rows.filter((r) => r.kind !== "sweep") },
    });
    expect(bare).toContain("no training log");
    expect(bare).toContain("sweep not run");
  });

  it("draws GRPO's curves, and says the KL was not measured when the run had no KL penalty", () => {
    const rlLog = (kl: (s: number) => number | null): GrpoLogLine[] => [
      { type: "valid", step: 0, hitRatio: 0.2, best: true },
      ...[1, 2, 3].map((step) => ({
        type: "step" as const,
        step,
        reward: 0.1 * step,
        hitRate: 0.05 * step,
        validRate: 0.8,
        formatRate: 1,
        length: 40 + step,
        groupsUsed: 4,
        loss: 0.01,
        kl: kl(step),
        entropy: 0.5,
        seconds: 1,
      })),
      { type: "valid", step: 3, hitRatio: 0.3, best: true },
    ];
    const grpo = (h: string) => svgs(h.slice(h.indexOf("Reinforcement refinement (GRPO)")));
    const withKl = grpo(renderReport({ ...fixture(), rlLog: rlLog((s) => 0.001 * s) }));
    const noKl = grpo(renderReport({ ...fixture(), rlLog: rlLog(() => null) }));
    const kl = (p: ReturnType<typeof svgs>) => p.find((x) => x.svg.includes("KL to the SFT adapter"))!;
    expect(kl(withKl).empty).toBe(false);
    expect(kl(withKl).marks).toBeGreaterThan(0);
    expect(kl(noKl).empty).toBe(true);
    expect(kl(noKl).svg).toContain("rl.beta is 0");
    // Every other GRPO curve is drawn either way.
    for (const p of [withKl, noKl]) expect(p.filter((x) => !x.empty && x.marks > 0).length).toBeGreaterThanOrEqual(4);
  });

  it("falls back to the constrained answers' agreement when no free-form pair is valid", () => {
    const f = fixture();
    const preds = f.predictions.map((p, i) => ({
      ...p,
      fused: { side: null, choice: null, case: "none" },
      constrained: { side: "user" as const, choice: p.candidates[0]!, case: i % 3 === 0 ? "disagree" : "agree" },
    }));
    const out = renderReport({ ...f, predictions: preds });
    const plot = svgs(out).find((p) => p.svg.includes("(constrained answers)"));
    expect((plot!.svg.match(/<path d="M/g) ?? []).length).toBe(2); // one step outline per group
    expect(plot!.svg).toContain("agree (n=40)"); // 20 users × 2 sides
    expect(plot!.svg).toContain("disagree (n=20)");
  });

  it("results.md lists every row under its table", () => {
    const md = renderResultsMarkdown(fixture().metrics);
    expect(md).toContain("| MSR-Rec | 0.5000 |");
    expect(md).toContain("## α/β sweep (Figure 6)");
    expect(md).toContain("- nothing really");
  });

  it("renders in headless Chromium without errors, every svg drawn", (ctx) => {
    if (!existsSync(CHROMIUM)) {
      console.log(`skipped: ${CHROMIUM} not found (install chromium to check report.html in a real browser)`);
      ctx.skip();
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "msr-report-"));
    try {
      const file = join(dir, "report.html");
      writeFileSync(file, html);
      const r = spawnSync(
        CHROMIUM,
        [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--no-first-run",
          "--enable-logging=stderr",
          "--v=0",
          "--dump-dom",
          `file://${file}`,
        ],
        { encoding: "utf8", timeout: 60_000 },
      );
      expect(r.status).toBe(0);
      expect(r.stderr).not.toMatch(/Uncaught|SyntaxError|Failed to load/);
      const dom = r.stdout;
      const plots = svgs(dom);
      // The browser draws every chart the static render holds, no more, no fewer.
      expect(plots.length).toBe(svgs(html).length);
      expect(plots.length).toBe(8);
      for (const p of plots) expect(p.marks).toBeGreaterThan(0);
      expect(readFileSync(file, "utf8")).toBe(html);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
