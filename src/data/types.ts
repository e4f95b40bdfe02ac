// The shapes every data stage shares: catalog items, raw interactions, per-user leave-one-out
// splits with their candidate sets, and the Table-1 statistics of a dataset.

/** A catalog item. `attributes` holds whatever the source offers (brand, categories, price ...). */
export interface Item {
  id: string;
  title: string;
  attributes: Record<string, string | number | string[]>;
}

/** One user-item event as read from a source file. */
export interface Interaction {
  user: string;
  item: string;
  /** Seconds since the epoch, or a synthetic position where the source has no clock. */
  time: number;
  rating?: number;
  /** Position in the source (file order); breaks ties between equal times. */
  order: number;
}

/** A user's leave-one-out split: `train` oldest first, then `valid`, then `test`. */
export interface UserSplit {
  user: string;
  train: string[];
  valid: string;
  test: string;
  /** Ground truth plus sampled negatives, shuffled; each contains its ground truth exactly once. */
  candidates: { valid: string[]; test: string[] };
}

/** Table-1 statistics: density = interactions / (users × items). */
export interface DatasetStats {
  users: number;
  items: number;
  interactions: number;
  density: number;
}

/** What a reader produces: interactions in file order, the items that have usable titles. */
export interface RawDataset {
  interactions: Interaction[];
  items: Map<string, Item>;
  /** Malformed lines skipped (only with `skipBad`). */
  skipped: number;
  /** A short description of where the data came from (paths, format). */
  source: string;
}

/** Options every reader accepts. */
export interface ReadOptions {
  /** Skip malformed lines (counted in `skipped`) instead of failing on the first. */
  skipBad?: boolean;
  /** Worker threads used to parse lines (1 = parse on the main thread). */
  threads?: number;
  /** Progress of the big files: bytes read so far of `file` (compressed bytes for .gz). */
  onProgress?: (file: string, bytesRead: number, fileBytes: number) => void;
}

export function computeStats(users: number, items: number, interactions: number): DatasetStats {
  const cells = users * items;
  return { users, items, interactions, density: cells > 0 ? interactions / cells : 0 };
}
