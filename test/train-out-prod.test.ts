// The training backward's CPU out_prod (native/src/train_out_prod.h: out = a·bᵀ with a read as
// stored, any weight type) against float64 sums of the same dequantized values, and against what
// the backward did before: the weight dequantized to F32, transposed and multiplied with ggml's
// mul_mat. Both layouts the backward uses (dx = Wᵀ·dy with b a transposed view of dy; dA = x·gᵀ
// with b contiguous), odd sizes (rows of a not a multiple of the register tile, more rows of a
// than one panel, tokens not a multiple of the tile, uneven thread splits, fewer row blocks than
// threads), batches with a broadcast (attention heads), every instruction set this CPU runs, and
// dy values far below F16's normal range.
//
// Tolerance, per output element: |op − exact| <= 1e-6 · Σ_k |a·b| (float32 sums of up to 4096
// terms, summed in levels of 64; measured at most 3e-7), and never more than 4× ggml's F32 path's
// error + 2e-7 (measured: equal to it within 2× on K ≥ 200).
import { describe, expect, it } from "vitest";
import { devAddon } from "../src/engine/bindings.js";
import { addonMissing } from "./support/addon.js";

const missing = addonMissing("out_prod kernel tests");
const TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL"];
// [m (rows of out = values per row of a), k (rows of a), n (columns of out), threads, layout]
const SHAPES: [number, number, number, number, "dy" | "act"][] = [
  [768, 200, 13, 3, "dy"], // 3 kernel row strips of 256, a last panel of 8 rows, a tile remainder of 1
  [256, 64, 500, 4, "act"], // one 256-block for 4 threads: the threads split the columns instead
  [512, 4096, 7, 2, "dy"], // past 2048 rows of a: the staged sums
];

describe.skipIf(missing)("out_prod_cpu", () => {
  const isas = ["avx512", "avx2", "generic"] as const;

  it.each(TYPES)(
    "%s: equals float64 sums and ggml's F32 path, in the graph and with every kernel this CPU runs",
    (type) => {
      for (const [m, k, n, threads, layout] of SHAPES) {
        for (const isa of isas) {
          let r;
          try {
            r = devAddon().outProdCheck({ type, m, k, n, threads, layout, isa, seed: m + k + n });
          } catch (e) {
            expect(String(e)).toMatch(/cannot run the/); // a kernel this CPU lacks
            continue;
          }
          const what = `${type} ${m}x${k}x${n} ${layout} ${threads} threads`;
          for (const err of [r.errTerms, r.isaErrTerms!]) {
            expect(err, `${what} (${isa} / graph ${r.isa})`).toBeLessThan(1e-6);
            expect(err, `${what} (${isa} / graph ${r.isa}) vs ggml ${r.ggmlErrTerms}`).toBeLessThan(
              4 * r.ggmlErrTerms + 2e-7,
            );
          }
        }
      }
    },
  );

  it("broadcasts a over b's dim 2 as ggml's out_prod does (the attention products: query heads sharing a K/V head)", () => {
    for (const type of ["F32", "F16"]) {
      for (const layout of ["dy", "act"] as const) {
        for (const [m, k, n, batches, groups] of [
          [32, 100, 90, 8, 2],
          [64, 64, 64, 4, 4],
          [16, 512, 512, 6, 3],
        ]) {
          const r = devAddon().outProdCheck({ type, m: m!, k: k!, n: n!, batches, groups, threads: 2, layout });
          const what = `${type} ${layout} ${m}x${k}x${n} batches ${batches} groups ${groups}`;
          expect(r.errTerms, what).toBeLessThan(1e-6);
          expect(r.errTerms, what).toBeLessThan(4 * r.ggmlErrTerms + 2e-7);
        }
      }
    }
  });

  it("refuses a shape whose rows are not whole blocks", () => {
    expect(() => devAddon().outProdCheck({ type: "Q4_K", m: 300, k: 8, n: 2 })).toThrow(
      /multiple of the type's block size/,
    );
  });
});
