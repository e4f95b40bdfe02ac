// Option checks with one owner each. The module that uses an option owns its rule and lists what
// is wrong with a set of options as issues keyed by its own option names; whoever reaches it (a
// command-line flag, a run-config field, a library call) reports the issues under its own names.
// So a rule is written once, and an error still names what the user typed.

/** One bad option: its key among the owner's options and what is wrong ("must be ... (got x)"). */
export interface OptionIssue {
  key: string;
  problem: string;
}

/** How a caller names the owner's option keys (default: the keys themselves). */
export type OptionNames = (key: string) => string;

/** Throws one error listing every issue under the caller's names; returns when there is none. */
export function throwIssues(issues: readonly OptionIssue[], name: OptionNames = (k) => k): void {
  if (issues.length > 0) throw new Error(issues.map((i) => `${name(i.key)} ${i.problem}`).join("; "));
}

/** Issues of another owner under this owner's keys (`keys[theirs] = ours`; unlisted keys stay). */
export function renameIssues(issues: readonly OptionIssue[], keys: Readonly<Record<string, string>>): OptionIssue[] {
  return issues.map((i) => ({ key: keys[i.key] ?? i.key, problem: i.problem }));
}

const got = (v: unknown) => `(got ${typeof v === "string" ? JSON.stringify(v) : String(v)})`;

/** The rules owners apply: each returns the problem, or null when `v` passes. */
export const rule = {
  integer: (v: unknown) => (Number.isSafeInteger(v) ? null : `must be an integer ${got(v)}`),
  positiveInteger: (v: unknown) =>
    Number.isSafeInteger(v) && (v as number) > 0 ? null : `must be a positive integer ${got(v)}`,
  integerAtLeast: (min: number) => (v: unknown) =>
    Number.isSafeInteger(v) && (v as number) >= min ? null : `must be an integer >= ${min} ${got(v)}`,
  positive: (v: unknown) =>
    typeof v === "number" && Number.isFinite(v) && v > 0 ? null : `must be a positive number ${got(v)}`,
  nonNegative: (v: unknown) =>
    typeof v === "number" && Number.isFinite(v) && v >= 0 ? null : `must be a finite number >= 0 ${got(v)}`,
  oneOf: (values: readonly string[]) => (v: unknown) =>
    typeof v === "string" && values.includes(v)
      ? null
      : `must be ${values
          .map((x) => JSON.stringify(x))
          .join(", ")
          .replace(/, ([^,]*)$/, " or $1")} ${got(v)}`,
};

/**
 * Applies `check` to each option that is set (undefined = the owner's default, never an issue)
 * and collects the issues: `checks` maps an option key to [value, rule].
 */
export function issuesOf(
  checks: Readonly<Record<string, readonly [unknown, (v: unknown) => string | null]>>,
): OptionIssue[] {
  const out: OptionIssue[] = [];
  for (const [key, [value, check]] of Object.entries(checks)) {
    if (value === undefined) continue;
    const problem = check(value);
    if (problem !== null) out.push({ key, problem });
  }
  return out;
}
