// Which epoch's adapter a variant keeps. One criterion for every variant (METHOD §4): validation
// HitRatio@1, ties broken by the unweighted recommendation NLL (mean NLL of the title tokens from
// `[reasoning_end]` on). Never the variant's own α/β-weighted loss: the sweep and the ablations
// weight their losses differently, so that loss would select them by different yardsticks.

export interface EpochScore {
  /** Validation HitRatio@1 (NaN when there are no validation users). */
  hitRatio: number;
  /** Mean recommendation NLL over the validation samples (NaN when there are none). */
  recommendationNll: number;
}

const orNeg = (x: number) => (Number.isNaN(x) ? -Infinity : x);
const orPos = (x: number) => (Number.isNaN(x) ? Infinity : x);

/** True when `e` beats `best` (null: nothing kept yet). Exact ties keep the earlier epoch. */
export function betterEpoch(e: EpochScore, best: EpochScore | null): boolean {
  if (best === null) return true;
  const [h, hb] = [orNeg(e.hitRatio), orNeg(best.hitRatio)];
  if (h !== hb) return h > hb;
  return orPos(e.recommendationNll) < orPos(best.recommendationNll);
}
