// Exports a prepared dataset as RecBole atomic files, so SASRec / GRU4Rec / Caser can be trained
// and evaluated in RecBole on exactly our split. Written into OUT (named after its folder, as
// RecBole expects `data_path/<dataset>/<dataset>.inter`):
//   <name>.inter       user_id:token  item_id:token  timestamp:float — every user's train items,
//                      then valid, then test, with timestamps 1, 2, ..., n (the position in our
//                      chronological order). With `eval_args: {split: {LS: valid_and_test},
//                      order: TO, group_by: user}` RecBole's leave-one-out reproduces our split
//                      exactly: per user, last = test, second last = valid, the rest = train
//                      (positions are distinct per user, so sort stability never matters).
//   <name>.item        item_id:token  title:token_seq (tabs/newlines in titles become spaces)
//   <name>.candidates  user_id:token  split:token  candidates:token_seq — our exact candidate sets
//                      (ground truth + negatives); RecBole's own `mode: uni5` draws different
//                      negatives, so for numbers comparable to ours score these 6 items with the
//                      trained model (e.g. `model.full_sort_predict`) and take the argmax.
//   <name>.yaml        a RecBole config with the settings above, no re-filtering
//                      (`*_inter_num_interval: "[0,inf)"`) and MAX_ITEM_LIST_LENGTH 10
//                      (the history length shown to the LLM).
import { basename, dirname, join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic-write.js";
import type { Dataset } from "./dataset.js";
import { HISTORY_LENGTH } from "./protocol.js";

const clean = (s: string): string => s.replace(/[\t\r\n]+/g, " ").trim();

function checkToken(id: string, what: string): string {
  if (/[\t\r\n ]/.test(id))
    throw new Error(
      `${what} "${id}" contains whitespace, which RecBole token fields cannot hold; re-prepare with ids without spaces`,
    );
  return id;
}

export interface RecboleExport {
  name: string;
  files: string[];
}

export function exportRecbole(dataset: Pick<Dataset, "items" | "users">, outDir: string): RecboleExport {
  const dir = resolve(outDir);
  const name = basename(dir);
  if (!/^[\w.-]+$/.test(name))
    throw new Error(
      `the output folder name "${name}" becomes the RecBole dataset name: use letters, digits, "_", "-" or "."`,
    );
  const inter = ["user_id:token\titem_id:token\ttimestamp:float"];
  const cands = ["user_id:token\tsplit:token\tcandidates:token_seq"];
  for (const u of dataset.users) {
    const user = checkToken(u.user, "user id");
    [...u.train, u.valid, u.test].forEach((item, k) => inter.push(`${user}\t${checkToken(item, "item id")}\t${k + 1}`));
    cands.push(`${user}\tvalid\t${u.candidates.valid.join(" ")}`, `${user}\ttest\t${u.candidates.test.join(" ")}`);
  }
  const items = [
    "item_id:token\ttitle:token_seq",
    ...dataset.items.map((i) => `${checkToken(i.id, "item id")}\t${clean(i.title)}`),
  ];
  const yaml = [
    `# RecBole config for the msr-rec split in ${dir} (see the header of src/data/export-recbole.ts).`,
    `data_path: ${JSON.stringify(dirname(dir))}`,
    `dataset: ${name}`,
    "USER_ID_FIELD: user_id",
    "ITEM_ID_FIELD: item_id",
    "TIME_FIELD: timestamp",
    "load_col:",
    "  inter: [user_id, item_id, timestamp]",
    'user_inter_num_interval: "[0,inf)"',
    'item_inter_num_interval: "[0,inf)"',
    `MAX_ITEM_LIST_LENGTH: ${HISTORY_LENGTH}`,
    "eval_args:",
    "  split: {LS: valid_and_test}",
    "  order: TO",
    "  group_by: user",
    "  mode: uni5",
    "metrics: [Hit]",
    "topk: [1]",
    "valid_metric: Hit@1",
    "",
  ].join("\n");
  const files: [string, string][] = [
    [`${name}.inter`, inter.join("\n") + "\n"],
    [`${name}.item`, items.join("\n") + "\n"],
    [`${name}.candidates`, cands.join("\n") + "\n"],
    [`${name}.yaml`, yaml],
  ];
  for (const [f, text] of files) writeFileAtomic(join(dir, f), text);
  return { name, files: files.map(([f]) => join(dir, f)) };
}
