// Amazon Reviews 2023 (Hou et al.): `<Cat>.jsonl` reviews (`user_id`, `parent_asin` = the item id,
// `timestamp` in **milliseconds**, converted to seconds, `rating`) and `meta_<Cat>.jsonl`
// (`parent_asin`, `title`, `store`, `categories`, `features`, `description`, `price`).
import type { Item } from "../types.js";
import {
  optionalNumber,
  parseJsonObject,
  requireNumber,
  requireString,
  type MetaRecord,
  type ReviewRecord,
} from "./records.js";
import { cleanText, cleanTitle, parsePrice, shortText, stringList } from "./text.js";

export function parseAmazon2023Review(line: string): ReviewRecord {
  const o = parseJsonObject(line);
  return {
    kind: "review",
    user: requireString(o, "user_id"),
    item: requireString(o, "parent_asin"),
    time: requireNumber(o, "timestamp") / 1000,
    rating: optionalNumber(o, "rating"),
  };
}

export function parseAmazon2023Meta(line: string): MetaRecord {
  const o = parseJsonObject(line);
  const id = requireString(o, "parent_asin");
  const title = cleanTitle(o.title);
  if (!title) return { kind: "meta", id };
  const attributes: Item["attributes"] = {};
  const store = typeof o.store === "string" ? cleanText(o.store) : "";
  if (store) attributes.brand = store;
  const categories = stringList(o.categories);
  if (categories.length) attributes.categories = categories;
  const features = stringList(o.features, 10);
  if (features.length) attributes.features = features;
  const price = parsePrice(o.price);
  if (price !== undefined) attributes.price = price;
  const description = shortText(o.description);
  if (description) attributes.description = description;
  return { kind: "meta", id, item: { id, title, attributes } };
}
