// How the roofline suites report a weight type: our rates of each round, the llama.cpp tools'
// runs, and the ratios (each the median over rounds of ours against the tool runs just before
// and after that round). bench/support/roofline.ts runs the rounds.
import { median, type BenchResult } from "../lib.js";
import type { RooflineArgs, RooflineGoals } from "./roofline.js";
import type { GenRate, GenShape, ModeResult, Rate } from "./roofline-child.js";

/** Generation tokens/s with prompt processing removed (the full run less the 1-token run). */
const tgRate = (g: GenRate) => (g.full.tokens - g.one.tokens) / ((g.full.ms - g.one.ms) / 1000);
const rate = (r: Rate) => r.tokens / (r.ms / 1000);

export interface OurRates {
  prefill: number;
  half: number;
  tg: number;
  tgGrammar: number;
  /** Generation including prompt processing. */
  tgWhole: number;
}

export function ourRates(m: ModeResult): OurRates {
  return {
    prefill: rate(m.scorerPrefill),
    half: rate(m.scorerHalf),
    tg: tgRate(m.gen),
    tgGrammar: tgRate(m.grammar),
    tgWhole: rate(m.gen.full),
  };
}

function rateResults(tag: string, r: OurRates, genShape: string, suffix = "") {
  return [
    { name: `${tag}: ours, scorer, 512 prompt + 1 scored token, micro-batch 512${suffix}`, value: r.prefill },
    { name: `${tag}: ours, scorer, 256 prompt + 256 scored tokens, micro-batch 512${suffix}`, value: r.half },
    { name: `${tag}: ours, generation, ${genShape} (prompt processing removed)${suffix}`, value: r.tg },
    {
      name: `${tag}: ours, generation under a grammar (any text without a line break), ${genShape} (prompt processing removed)${suffix}`,
      value: r.tgGrammar,
    },
    { name: `${tag}: ours, generation, ${genShape}, including prompt processing${suffix}`, value: r.tgWhole },
  ].map((x) => ({ ...x, unit: "tokens/s" }));
}

/** A repetition round's rates. */
export function roundResults(res: BenchResult, tag: string, r: OurRates, round: number, genShape: string): void {
  res.results.push(...rateResults(tag, r, genShape, `, round ${round}`));
}

/** One numerics mode's results and ratios of its first round; returns its rates. */
export function modeResults(
  res: BenchResult,
  tag: string,
  m: ModeResult,
  users: number,
  goals: RooflineGoals,
  args: RooflineArgs,
  genShape: string,
): OurRates {
  const rates = ourRates(m);
  res.results.push(...rateResults(tag, rates, genShape));
  const inf = m.infer;
  if (!inf) return rates;
  const scoreFuseS = (inf.inferMs - inf.inferGenerateMs) / 1000;
  res.results.push(
    {
      name: `${tag}: inference, whole (${args.tokens} new tokens per side, ${args.parallel ?? "default"} parallel)`,
      value: inf.inferMs / 1000,
      unit: "s",
    },
    { name: `${tag}: inference, generation part`, value: inf.inferGenerateMs / 1000, unit: "s" },
    { name: `${tag}: inference, scoring and fusion part (parse, scorer calls, Eq. 3)`, value: scoreFuseS, unit: "s" },
    {
      name: `${tag}: inference, scorer calls alone (${inf.inferScoredRequests} requests)`,
      value: inf.inferScoreMs / 1000,
      unit: "s",
    },
    { name: `${tag}: inference, tokens generated`, value: inf.inferGenerated, unit: "tokens" },
    {
      name: `${tag}: inference, generation rate`,
      value: inf.inferGenerated / (inf.inferGenerateMs / 1000),
      unit: "tokens/s",
    },
  );
  res.ratios[`${tag}: whole inference / its generation part (1.0 = fusion costs nothing on top)`] =
    inf.inferMs / inf.inferGenerateMs;
  if (goals.scaleTo) {
    // Scaled to the goal's user count when fewer were run (a linear estimate: flagged in the name).
    const { users: goalUsers, wholeS, scoreFuseS: fuseS } = goals.scaleTo;
    const scale = goalUsers / users;
    const est = scale === 1 ? "" : ` (x${scale.toFixed(1)} estimate from ${users} users)`;
    res.ratios[`${tag}: whole inference of ${goalUsers} users / ${wholeS} s goal${est}`] =
      (scale * inf.inferMs) / 1000 / wholeS;
    res.ratios[`${tag}: scoring and fusion of ${goalUsers} users / ${fuseS} s goal${est}`] =
      (scale * scoreFuseS) / fuseS;
  }
  return rates;
}

export function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.slice(0, 160);
}

/** Lists each run of a tool (or why it failed); returns the runs as numbers, null where failed. */
export function reportTool(res: BenchResult, name: string, runs: (number | Error)[]): (number | null)[] {
  runs.forEach((v, i) => {
    const when = `run ${i + 1} of ${runs.length}${i === 0 ? " (before ours)" : ""}`;
    res.results.push(
      typeof v === "number"
        ? { name: `${name}, ${when}`, value: v, unit: "tokens/s" }
        : { name: `${name}, ${when}, failed: ${firstLine(v)}`, value: 0, unit: "n/a" },
    );
  });
  return runs.map((v) => (typeof v === "number" ? v : null));
}

/** Rates of a run of ours against tool runs: pp512 for the scorer, S_TG for generation. */
export interface ToolSeries {
  pp: (number | null)[];
  tg: (number | null)[];
}

/** One numerics mode's ratios: round i of `ours` sits between tool runs i and i + 1. */
export function roundRatios(
  res: BenchResult,
  tag: string,
  ours: OurRates[],
  tools: ToolSeries,
  goals: RooflineGoals,
  gen: GenShape,
): void {
  const ratio = (pick: (x: OurRates) => number, tool: (number | null)[]) =>
    median(
      ours.flatMap((x, i) => {
        const around = [tool[i], tool[i + 1]].filter((v): v is number => v !== null);
        return around.length ? [pick(x) / (around.reduce((a, b) => a + b, 0) / around.length)] : [];
      }),
    );
  const of = ours.length > 1 ? `, median of ${ours.length} rounds` : "";
  const put = (name: string, v: number | null) => {
    if (v !== null) res.ratios[`${tag}: ${name}${of}`] = v;
  };
  put(
    `scorer, 512 + 1 scored / llama-bench pp512 (goal >= ${goals.scorer})`,
    ratio((x) => x.prefill, tools.pp),
  );
  put(
    "scorer, 256 + 256 scored / llama-bench pp512 (its LM head on 256 rows is work pp512 skips)",
    ratio((x) => x.half, tools.pp),
  );
  put(
    `generation ${gen.parallel} parallel / llama-batched-bench S_TG (goal >= ${goals.generation})`,
    ratio((x) => x.tg, tools.tg),
  );
  put(
    `generation ${gen.parallel} parallel under a grammar / llama-batched-bench S_TG (goal >= ${goals.generation})`,
    ratio((x) => x.tgGrammar, tools.tg),
  );
}
