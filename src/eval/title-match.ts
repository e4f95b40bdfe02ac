// Which candidate an answer names. LLaRA's rule: lower-case the answer and the titles; the answer
// is valid iff exactly one candidate title occurs in it as a substring. The strict variant also
// resolves titles that contain each other ("Alien" inside "Aliens"): an occurrence that lies
// inside an occurrence of a longer matched title does not count, so the longest match wins.

export interface TitleMatch {
  /** Index into the candidate list of the one title named, or -1 when invalid. */
  index: number;
  /** Indices of every candidate whose title occurs (after the rule's resolution). */
  matched: number[];
  valid: boolean;
}

function occurrences(haystack: string, needle: string): number[] {
  const out: number[] = [];
  if (needle.length === 0) return out;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) out.push(at);
  return out;
}

function result(matched: number[]): TitleMatch {
  const valid = matched.length === 1;
  return { index: valid ? matched[0]! : -1, matched, valid };
}

/** LLaRA's rule, exactly: candidates whose lower-cased title is a substring of the lower-cased answer. */
export function matchTitle(answer: string, candidates: readonly string[]): TitleMatch {
  const a = answer.toLowerCase();
  const matched: number[] = [];
  candidates.forEach((title, i) => {
    const t = title.toLowerCase();
    if (t.length > 0 && a.includes(t)) matched.push(i);
  });
  return result(matched);
}

/**
 * Strict variant: a matched title counts only if at least one of its occurrences is not covered
 * by an occurrence of a longer matched title. Identical duplicate titles stay ambiguous.
 */
export function matchTitleStrict(answer: string, candidates: readonly string[]): TitleMatch {
  const a = answer.toLowerCase();
  const found = candidates
    .map((title, i) => ({ i, t: title.toLowerCase(), at: occurrences(a, title.toLowerCase()) }))
    .filter((c) => c.at.length > 0);
  const matched: number[] = [];
  for (const c of found) {
    const longer = found.filter((o) => o.t.length > c.t.length && o.t.includes(c.t));
    const uncovered = c.at.some((start) => {
      const end = start + c.t.length;
      return !longer.some((o) => o.at.some((os) => os <= start && end <= os + o.t.length));
    });
    if (uncovered) matched.push(c.i);
  }
  return result(matched);
}
