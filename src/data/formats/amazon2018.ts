// Amazon Review Data 2018 (Ni et al.): `<Cat>_5.json.gz` reviews (`reviewerID`, `asin`, `overall`,
// `unixReviewTime` in seconds) and `meta_<Cat>.json.gz` in strict JSON (`asin`, `title`, `brand`,
// `category` list, `description` list, `price` like "$12.99", `main_cat`). Titles are sometimes
// HTML or JavaScript left over from scraping: they are cleaned, and dropped when nothing usable
// remains (see text.ts).
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

export function parseAmazon2018Review(line: string): ReviewRecord {
  const o = parseJsonObject(line);
  return {
    kind: "review",
    user: requireString(o, "reviewerID"),
    item: requireString(o, "asin"),
    time: requireNumber(o, "unixReviewTime"),
    rating: optionalNumber(o, "overall"),
  };
}

export function parseAmazon2018Meta(line: string): MetaRecord {
  const o = parseJsonObject(line);
  const id = requireString(o, "asin");
  const title = cleanTitle(o.title);
  if (!title) return { kind: "meta", id };
  const attributes: Item["attributes"] = {};
  const brand = typeof o.brand === "string" ? cleanText(o.brand) : "";
  if (brand) attributes.brand = brand;
  const categories = stringList(o.category);
  if (categories.length) attributes.categories = categories;
  const mainCat = typeof o.main_cat === "string" ? cleanText(o.main_cat) : "";
  if (mainCat && !/[<>]/.test(mainCat)) attributes.mainCategory = mainCat;
  const price = parsePrice(o.price);
  if (price !== undefined) attributes.price = price;
  const description = shortText(o.description);
  if (description) attributes.description = description;
  return { kind: "meta", id, item: { id, title, attributes } };
}
