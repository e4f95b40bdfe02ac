// BERTScore (Zhang et al. 2020): greedy cosine matching of token embeddings.
//   R = Σ_j w_j · max_i cos(c_i, r_j) / Σ_j w_j      (each reference token finds its best match)
//   P = Σ_i w_i · max_j cos(c_i, r_j) / Σ_i w_i      (each candidate token finds its best match)
//   F1 = 2PR / (P + R);  optional rescaling with a baseline b: (x − b) / (1 − b).
// Embeddings come from a callback (an embedding model's per-token vectors), so this file needs no
// model of its own; weights default to 1 (pass idf weights to get the idf variant).

export type Vector = ArrayLike<number>;

/** Per-token embedding vectors for each text, in order. */
export type TokenEmbedder = (texts: readonly string[]) => Promise<Vector[][]>;

export interface BertScore {
  precision: number;
  recall: number;
  f1: number;
}

function norm(v: Vector): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/** Cosine similarity matrix [candidate token][reference token]; zero vectors give 0. */
export function cosineMatrix(cand: readonly Vector[], ref: readonly Vector[]): Float64Array[] {
  const dim = cand[0]?.length ?? ref[0]?.length ?? 0;
  for (const v of [...cand, ...ref]) {
    if (v.length !== dim)
      throw new Error(`embedding vectors differ in length (${v.length} vs ${dim}); the embedder must return one size`);
  }
  const rn = ref.map(norm);
  return cand.map((c) => {
    const cn = norm(c);
    const row = new Float64Array(ref.length);
    ref.forEach((r, j) => {
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += c[k]! * r[k]!;
      row[j] = cn > 0 && rn[j]! > 0 ? dot / (cn * rn[j]!) : 0;
    });
    return row;
  });
}

function weightedMean(values: readonly number[], weights?: readonly number[]): number {
  let num = 0;
  let den = 0;
  values.forEach((v, i) => {
    const w = weights?.[i] ?? 1;
    num += w * v;
    den += w;
  });
  return den > 0 ? num / den : 0;
}

/** BERTScore of one candidate against one reference, from their token vectors. */
export function bertScoreFromVectors(
  cand: readonly Vector[],
  ref: readonly Vector[],
  o: { candWeights?: readonly number[]; refWeights?: readonly number[]; baseline?: number } = {},
): BertScore {
  if (cand.length === 0 || ref.length === 0) return { precision: 0, recall: 0, f1: 0 };
  const sim = cosineMatrix(cand, ref);
  const bestForCand = sim.map((row) => Math.max(...row));
  const bestForRef = ref.map((_, j) => Math.max(...sim.map((row) => row[j]!)));
  let precision = weightedMean(bestForCand, o.candWeights);
  let recall = weightedMean(bestForRef, o.refWeights);
  let f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  if (o.baseline !== undefined) {
    const b = o.baseline;
    if (!(b < 1)) throw new Error(`the rescaling baseline must be below 1, got ${b}`);
    [precision, recall, f1] = [precision, recall, f1].map((x) => (x - b) / (1 - b)) as [number, number, number];
  }
  return { precision, recall, f1 };
}

/** BERTScore of each candidate text against its reference text (pairwise, same length lists). */
export async function bertScore(
  candidates: readonly string[],
  references: readonly string[],
  embed: TokenEmbedder,
  o: { baseline?: number } = {},
): Promise<BertScore[]> {
  if (candidates.length !== references.length)
    throw new Error(
      `BERTScore pairs candidates with references: got ${candidates.length} candidates and ${references.length} references`,
    );
  if (candidates.length === 0) return [];
  const vectors = await embed([...candidates, ...references]);
  if (vectors.length !== 2 * candidates.length)
    throw new Error(`the embedder returned ${vectors.length} results for ${2 * candidates.length} texts`);
  return candidates.map((_, i) => bertScoreFromVectors(vectors[i]!, vectors[candidates.length + i]!, o));
}

/** Mean F1 (and P, R) over pairs. */
export function meanBertScore(scores: readonly BertScore[]): BertScore {
  const n = scores.length || 1;
  return {
    precision: scores.reduce((a, s) => a + s.precision, 0) / n,
    recall: scores.reduce((a, s) => a + s.recall, 0) / n,
    f1: scores.reduce((a, s) => a + s.f1, 0) / n,
  };
}
