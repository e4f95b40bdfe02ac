// Amazon Review Data 2014 (McAuley et al.): `reviews_<Cat>_5.json.gz` holds strict JSON lines
// (`reviewerID`, `asin`, `overall`, `unixReviewTime` in seconds); `meta_<Cat>.json.gz` holds one
// **Python dict literal** per line (`str(dict)`: single quotes, True/None), parsed by our own safe
// literal parser. Attributes kept: brand, categories (flattened), price, description.
import type { Item } from "../types.js";
import { parsePythonLiteral } from "./python-literal.js";
import {
  optionalNumber,
  parseJsonObject,
  requireNumber,
  requireString,
  type MetaRecord,
  type ReviewRecord,
} from "./records.js";
import { cleanText, cleanTitle, parsePrice, shortText, stringList } from "./text.js";

export function parseAmazon2014Review(line: string): ReviewRecord {
  const o = parseJsonObject(line);
  return {
    kind: "review",
    user: requireString(o, "reviewerID"),
    item: requireString(o, "asin"),
    time: requireNumber(o, "unixReviewTime"),
    rating: optionalNumber(o, "overall"),
  };
}

export function parseAmazon2014Meta(line: string): MetaRecord {
  let v;
  try {
    v = parsePythonLiteral(line);
  } catch (e) {
    throw new Error(`not a Python dict literal (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("expected a Python dict literal");
  const id = requireString(v, "asin");
  const title = cleanTitle(v.title);
  if (!title) return { kind: "meta", id };
  const attributes: Item["attributes"] = {};
  if (typeof v.brand === "string" && cleanText(v.brand)) attributes.brand = cleanText(v.brand);
  const categories = stringList(v.categories);
  if (categories.length) attributes.categories = categories;
  const price = parsePrice(v.price);
  if (price !== undefined) attributes.price = price;
  const description = shortText(v.description);
  if (description) attributes.description = description;
  return { kind: "meta", id, item: { id, title, attributes } };
}
