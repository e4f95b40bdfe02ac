// The shards of one split step, each in its own folder under a root:
//   ROOT/shard-I-of-N/        what shard I wrote, and shard.json once it finished
//   ROOT/layout.json          the array layout its first scheduler task recorded
//   ROOT/stale/               shards of another shard count, set aside by a merge
// shard.json carries the fingerprint of the shard's inputs (fingerprint.ts). It is removed when
// a shard starts and written when it ends, so a killed shard reads as unfinished. A merge takes
// the shards of one count N and refuses any that is unfinished or was made from other inputs,
// naming it and the command that redoes it; shards of another N are moved to stale/.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic-write.js";
import { describeChange, type Fingerprint, type FingerprintInputs } from "./fingerprint.js";
import { isAuto, resolveSchedulerShard, type ArrayLayout, type Shard, type ShardSpec } from "./scheduler-shard.js";

type Env = Readonly<Record<string, string | undefined>>;

export function shardDirName(shard: Shard): string {
  return `shard-${shard.index}-of-${shard.count}`;
}

const SHARD_DIR = /^shard-(\d+)-of-(\d+)$/;

/** shard.json: the shard's finished marker. */
export interface ShardMarker {
  stage: string;
  index: number;
  count: number;
  fingerprint: string;
  inputs: FingerprintInputs;
  finishedAt: string;
  /** How --shard auto found the shard, when it did. */
  scheduled?: string;
}

/** layout.json: the array layout and the inputs its first task saw. */
export interface RecordedLayout extends ArrayLayout {
  fingerprint: string;
  recordedAt: string;
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return null; // missing or torn: as if absent
  }
}

export class ShardFolders {
  /** `stage` names the step in messages ("synthesize"); `redo(shard)` is the command that runs one shard. */
  constructor(
    readonly root: string,
    readonly stage: string,
    readonly redo: (shard: Shard) => string,
  ) {}

  dir(shard: Shard): string {
    return join(this.root, shardDirName(shard));
  }

  get layoutFile(): string {
    return join(this.root, "layout.json");
  }

  readLayout(): RecordedLayout | null {
    return readJson<RecordedLayout>(this.layoutFile);
  }

  /** The shard `spec` names: i/N as given, auto from the scheduler and the recorded layout. */
  resolve(spec: ShardSpec, env: Env = process.env): { shard: Shard; how: string | null; layout: ArrayLayout | null } {
    if (!isAuto(spec)) return { shard: { index: spec.index, count: spec.count }, how: null, layout: null };
    const r = resolveSchedulerShard(spec, env, this.readLayout());
    return { shard: { index: r.shard.index, count: r.shard.count }, how: r.how, layout: r.layout };
  }

  /**
   * Starts shard `shard`: records `layout` (an array's first task) unless it is recorded already,
   * removes the shard's marker and returns its folder.
   */
  begin(shard: Shard, fp: Fingerprint, layout: ArrayLayout | null = null): string {
    if (layout) {
      const r = this.readLayout();
      const same =
        r &&
        r.scheduler === layout.scheduler &&
        r.arrayJobId === layout.arrayJobId &&
        r.min === layout.min &&
        r.step === layout.step &&
        r.count === layout.count &&
        r.fingerprint === fp.id;
      if (!same)
        writeFileAtomic(
          this.layoutFile,
          JSON.stringify({ ...layout, fingerprint: fp.id, recordedAt: new Date().toISOString() }, null, 2) + "\n",
        );
    }
    const dir = this.dir(shard);
    mkdirSync(dir, { recursive: true });
    rmSync(join(dir, "shard.json"), { force: true });
    return dir;
  }

  /** Marks shard `shard` finished, made from the inputs `fp`. */
  finish(shard: Shard, fp: Fingerprint, scheduled?: string | null): void {
    const marker: ShardMarker = {
      stage: this.stage,
      index: shard.index,
      count: shard.count,
      fingerprint: fp.id,
      inputs: fp.inputs,
      finishedAt: new Date().toISOString(),
      ...(scheduled ? { scheduled } : {}),
    };
    writeFileAtomic(join(this.dir(shard), "shard.json"), JSON.stringify(marker, null, 2) + "\n");
  }

  readMarker(shard: Shard): ShardMarker | null {
    return readJson<ShardMarker>(join(this.dir(shard), "shard.json"));
  }

  /** Every shard folder under the root (not under stale/). */
  list(): Shard[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root)
      .map((d) => SHARD_DIR.exec(d))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ index: Number(m[1]), count: Number(m[2]) }))
      .filter((s) => s.index < s.count);
  }

  /**
   * The shard count a merge takes: the only one, else the only one with shards finished from the
   * current inputs, else the recorded array's.
   */
  private chooseCount(all: Shard[], fp: Fingerprint): number {
    const counts = [...new Set(all.map((s) => s.count))].sort((a, b) => a - b);
    if (counts.length === 1) return counts[0]!;
    const recorded = this.readLayout()?.count;
    const matching = counts.filter((n) => all.some((s) => s.count === n && this.readMarker(s)?.fingerprint === fp.id));
    if (matching.length === 1) return matching[0]!;
    const candidates = matching.length > 0 ? matching : counts;
    if (recorded !== undefined && candidates.includes(recorded)) return recorded;
    throw new Error(
      `${this.root} holds ${this.stage} shards of ${candidates.join(" and ")} shards; keep one count: move the other shard-*-of-N folders into ${join(this.root, "stale")}`,
    );
  }

  /**
   * The folders of all N shards in order, checked against the current inputs `fp`. Shards of
   * another count are moved to stale/ (each said through `log`); an unfinished, missing or stale
   * shard makes it throw, naming each with the command that redoes it.
   */
  readyForMerge(fp: Fingerprint, log: (m: string) => void = () => {}): string[] {
    const all = this.list();
    if (all.length === 0)
      throw new Error(
        `no ${this.stage} shards in ${this.root}; run the shards first (--shard i/N, or --shard auto in a job array)`,
      );
    const n = this.chooseCount(all, fp);
    for (const s of all.filter((x) => x.count !== n)) this.setAside(s, n, log);
    const problems: string[] = [];
    const dirs: string[] = [];
    for (let index = 0; index < n; index++) {
      const shard = { index, count: n };
      dirs.push(this.dir(shard));
      const m = this.readMarker(shard);
      const name = `${this.stage} shard ${index}/${n}`;
      if (!existsSync(this.dir(shard))) problems.push(`${name} is missing; run it: ${this.redo(shard)}`);
      else if (!m)
        problems.push(`${name} did not finish (${this.dir(shard)} has no shard.json); run it: ${this.redo(shard)}`);
      else if (m.fingerprint !== fp.id) {
        const why = m.inputs ? describeChange(m.inputs, fp.inputs) : "made before shards carried their inputs";
        problems.push(`${name} was made from other inputs (${why}); redo it: ${this.redo(shard)}`);
      }
    }
    if (problems.length > 0) {
      throw new Error(
        `cannot merge the ${this.stage} shards in ${this.root}:\n  ${problems.join("\n  ")}\nthen merge again`,
      );
    }
    return dirs;
  }

  /** Moves a shard of another count into stale/ (a free name there), saying so. */
  private setAside(shard: Shard, n: number, log: (m: string) => void): void {
    const stale = join(this.root, "stale");
    mkdirSync(stale, { recursive: true });
    let to = join(stale, shardDirName(shard));
    for (let k = 2; existsSync(to); k++) to = join(stale, `${shardDirName(shard)}.${k}`);
    renameSync(this.dir(shard), to);
    log(`[${this.stage}] set aside ${shardDirName(shard)}: this merge takes the ${n} shards of ${n}; moved to ${to}`);
  }
}
