// Naive references the engine is checked against.

/** log-softmax of one row in float64, then the target's value. */
export function naiveLogprob(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return row[target]! - max - Math.log(sum);
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** `|a - b| <= abs + rel * |b|` for every element, with the first offender in the message. */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, abs: number, rel = 0): void {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const tol = abs + rel * Math.abs(b[i]!);
    if (!(Math.abs(a[i]! - b[i]!) <= tol)) throw new Error(`element ${i}: ${a[i]} vs ${b[i]} (tolerance ${tol})`);
  }
}
