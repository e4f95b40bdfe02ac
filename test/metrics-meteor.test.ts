// METEOR against hand-computed values and NLTK's documented example; the Porter stemmer on the
// classic examples of Porter (1980) as NLTK's default mode stems them; WordNet synonym lookup.
import { describe, expect, it } from "vitest";
import { porterStem, measure } from "../src/eval/porter.js";
import {
  countChunks,
  meteorAlign,
  meteorScore,
  meteorText,
  meteorTokens,
  singleMeteorScore,
} from "../src/eval/meteor.js";
import { defaultWordNet } from "../src/eval/wordnet.js";

describe("Porter stemmer", () => {
  it("stems the classic examples", () => {
    const cases: Record<string, string> = {
      caresses: "caress",
      ponies: "poni",
      ties: "tie",
      caress: "caress",
      cats: "cat",
      feed: "feed",
      agreed: "agre",
      plastered: "plaster",
      bled: "bled",
      motoring: "motor",
      sing: "sing",
      conflated: "conflat",
      troubled: "troubl",
      sized: "size",
      hopping: "hop",
      tanned: "tan",
      falling: "fall",
      hissing: "hiss",
      fizzed: "fizz",
      failing: "fail",
      filing: "file",
      happy: "happi",
      sky: "sky",
      relational: "relat",
      conditional: "condit",
      rational: "ration",
      valenci: "valenc",
      hesitanci: "hesit",
      digitizer: "digit",
      conformabli: "conform",
      radicalli: "radic",
      differentli: "differ",
      vileli: "vile",
      analogousli: "analog",
      vietnamization: "vietnam",
      predication: "predic",
      operator: "oper",
      feudalism: "feudal",
      decisiveness: "decis",
      hopefulness: "hope",
      callousness: "callous",
      formaliti: "formal",
      sensitiviti: "sensit",
      sensibiliti: "sensibl",
      triplicate: "triplic",
      formative: "form",
      formalize: "formal",
      electriciti: "electr",
      electrical: "electr",
      hopeful: "hope",
      goodness: "good",
      revival: "reviv",
      allowance: "allow",
      inference: "infer",
      airliner: "airlin",
      gyroscopic: "gyroscop",
      adjustable: "adjust",
      defensible: "defens",
      irritant: "irrit",
      replacement: "replac",
      adjustment: "adjust",
      dependent: "depend",
      adoption: "adopt",
      homologou: "homolog",
      communism: "commun",
      activate: "activ",
      angulariti: "angular",
      homologous: "homolog",
      effective: "effect",
      bowdlerize: "bowdler",
      probate: "probat",
      rate: "rate",
      cease: "ceas",
      controll: "control",
      roll: "roll",
      generalizations: "gener",
      oscillators: "oscil",
      // NLTK's extensions: irregular forms, short words untouched.
      dying: "die",
      skies: "sky",
      is: "is",
      running: "run",
      Running: "run",
    };
    for (const [word, stem] of Object.entries(cases)) expect(porterStem(word), word).toBe(stem);
  });

  it("measures [C](VC)^m[V]", () => {
    expect([
      measure("tr"),
      measure("ee"),
      measure("tree"),
      measure("trouble"),
      measure("oats"),
      measure("troubles"),
      measure("private"),
    ]).toEqual([0, 0, 0, 1, 1, 2, 2]);
  });
});

describe("WordNet synonyms", () => {
  const wn = defaultWordNet();
  it("collects lemma names of every synset, through morphy's suffix rules", () => {
    expect(wn.synonyms("car")).toContain("auto");
    expect(wn.synonyms("car")).toContain("automobile");
    expect(wn.synonyms("cars")).toContain("automobile"); // morphy: cars -> car
    expect(wn.synonyms("car")).not.toContain("motor_vehicle"); // multi-word lemmas are skipped
    expect(wn.synonyms("qzxv")).toEqual(new Set(["qzxv"]));
  });
});

describe("METEOR", () => {
  const none = { wordnet: null } as const;

  it("identical 8-token sentences: 1 - 0.5·(1/8)^3 = 0.9990234375", () => {
    const s = "the user likes crime films from the nineties".split(" ");
    expect(singleMeteorScore(s, s)).toBeCloseTo(0.9990234375, 12);
  });

  it("a full permutation: 6 matches in 6 chunks, penalty 0.5, score 0.5", () => {
    // Greedy from the end: mat(5,2) the(4,4) on(3,0) sat(2,3) cat(1,5) the(0,1): no two adjacent.
    const hyp = "the cat sat on the mat".split(" ");
    const ref = "on the mat sat the cat".split(" ");
    expect(meteorAlign(hyp, ref, none)).toEqual([
      [0, 1],
      [1, 5],
      [2, 3],
      [3, 0],
      [4, 4],
      [5, 2],
    ]);
    expect(singleMeteorScore(ref, hyp, none)).toBeCloseTo(0.5, 12);
  });

  it("partial overlap: P 1/2, R 2/5, Fmean 0.2/0.49, one chunk of 2", () => {
    // Fmean = (0.5·0.4)/(0.9·0.5 + 0.1·0.4) = 0.408163...; penalty = 0.5·(1/2)^3 = 0.0625.
    const score = singleMeteorScore("zqa zqb zqx zqy zqz".split(" "), "zqa zqb zqc zqd".split(" "));
    expect(score).toBeCloseTo((1 - 0.0625) * (0.2 / 0.49), 12);
  });

  it("stem matches count like exact ones", () => {
    // the = the; cats ~ cat and running ~ runs by stem: 3 matches in one chunk.
    expect(singleMeteorScore(["the", "cat", "runs"], ["The", "cats", "running"], none)).toBeCloseTo(1 - 0.5 / 27, 12);
  });

  it("synonym matches use WordNet (car ~ auto), and only when enabled", () => {
    expect(singleMeteorScore(["the", "auto"], ["the", "car"])).toBeCloseTo(1 - 0.5 / 8, 12);
    // Without synonyms: 1 match of 2; P = R = 1/2, Fmean 1/2, penalty 0.5·1 → 0.25... of one chunk: 0.5·(1/1)^3.
    expect(singleMeteorScore(["the", "auto"], ["the", "car"], none)).toBeCloseTo(0.5 * (1 - 0.5), 12);
  });

  it("reproduces NLTK's documented example (0.6944)", () => {
    const hypothesis1 = [
      "It",
      "is",
      "a",
      "guide",
      "to",
      "action",
      "which",
      "ensures",
      "that",
      "the",
      "military",
      "always",
      "obeys",
      "the",
      "commands",
      "of",
      "the",
      "party",
    ];
    const reference1 = [
      "It",
      "is",
      "a",
      "guide",
      "to",
      "action",
      "that",
      "ensures",
      "that",
      "the",
      "military",
      "will",
      "forever",
      "heed",
      "Party",
      "commands",
    ];
    expect(Number(meteorScore([reference1], hypothesis1).toFixed(4))).toBe(0.6944);
  });

  it("takes the best reference, counts chunks, tokenizes text", () => {
    expect(meteorScore([["zqa"], ["zqb", "zqc"]], ["zqb", "zqc"], none)).toBeCloseTo(1 - 0.5 / 8, 12);
    expect(
      countChunks([
        [0, 0],
        [1, 1],
        [3, 2],
        [4, 3],
        [5, 7],
      ]),
    ).toBe(3);
    expect(meteorTokens("Step 1: the user's taste, e.g. films.")).toEqual([
      "Step",
      "1",
      ":",
      "the",
      "user's",
      "taste",
      ",",
      "e",
      ".",
      "g",
      ".",
      "films",
      ".",
    ]);
    expect(meteorText("", "anything")).toBe(0);
    expect(() => meteorScore([], ["a"])).toThrow(/at least one reference/);
  });
});
