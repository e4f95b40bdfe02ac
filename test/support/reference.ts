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

/**
 * The central difference (L(θ+h) − L(θ−h)) / 2h of the loss in entry `i` of parameter `name`;
 * the parameter is restored afterwards.
 */
export async function centralDifference<S>(
  t: {
    getParam(n: string): Float32Array;
    setParam(n: string, v: Float32Array): void;
    evaluate(s: S): Promise<{ loss: number }>;
  },
  name: string,
  i: number,
  h: number,
  samples: S,
): Promise<number> {
  const value = t.getParam(name);
  const orig = value[i]!;
  value[i] = orig + h;
  t.setParam(name, value);
  const lp = (await t.evaluate(samples)).loss;
  value[i] = orig - h;
  t.setParam(name, value);
  const lm = (await t.evaluate(samples)).loss;
  value[i] = orig;
  t.setParam(name, value);
  return (lp - lm) / (2 * h);
}
