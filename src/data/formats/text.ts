// Title and text cleaning shared by the Amazon readers. Amazon 2018 metadata titles are sometimes
// HTML fragments or even JavaScript (scraping leftovers): tags are stripped, entities decoded,
// whitespace collapsed, and what still looks like markup or code is rejected (the item is dropped,
// since the model only ever sees titles).

const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
  "#39": "'",
  reg: "®",
  trade: "™",
  copy: "©",
  hellip: "…",
  mdash: "—",
  ndash: "–",
  rsquo: "’",
  lsquo: "‘",
  rdquo: "”",
  ldquo: "“",
};

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-zA-Z]+);/g, (m, body: string) => {
    if (body[0] === "#") {
      const code = body[1] === "x" || body[1] === "X" ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? m;
  });
}

// Block-level tags separate words; inline tags (<b>, <i>, <span>) sit inside them.
const BLOCK_TAG = /<\/?(br|p|div|li|ul|ol|tr|td|th|table|h[1-6])\b[^>]*>/gi;

/** Strips tags and entities and collapses whitespace. */
export function cleanText(s: string): string {
  return decodeEntities(
    s
      .replace(/<script[\s\S]*?<\/script>/gi, " ")
      .replace(/<style[\s\S]*?<\/style>/gi, " ")
      .replace(BLOCK_TAG, " ")
      .replace(/<[^>]*>/g, ""),
  )
    .replace(/\s+/g, " ")
    .trim();
}

const CODE_LIKE = /[<>{}]|\b(var|function|document|window|return)\b\s*[.(=]|getTime\(|\$\(|\bhttps?:\/\//;

/** A title fit to show a model, or undefined when nothing usable is left after cleaning. */
export function cleanTitle(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  const t = cleanText(raw);
  if (t.length === 0 || t.length > 400 || CODE_LIKE.test(t)) return undefined;
  return t;
}

/** "$12.99" → 12.99; "$1.00 - $3.00" or anything non-numeric → undefined. */
export function parsePrice(raw: unknown): number | undefined {
  if (typeof raw === "number") return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw !== "string") return undefined;
  const m = /^\s*\$?\s*([\d,]+(?:\.\d+)?)\s*$/.exec(raw);
  if (!m) return undefined;
  const v = Number(m[1]!.replace(/,/g, ""));
  return Number.isFinite(v) ? v : undefined;
}

/** Strings of a value that should be a list of strings (nested lists flattened, HTML cleaned). */
export function stringList(raw: unknown, limit = 20): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (out.length >= limit) return;
    if (typeof v === "string") {
      const t = cleanText(v);
      if (t && !out.includes(t)) out.push(t);
    } else if (Array.isArray(v)) v.forEach(visit);
  };
  visit(raw);
  return out;
}

/** A description for attributes: strings joined, cleaned, cut to `max` characters. */
export function shortText(raw: unknown, max = 500): string | undefined {
  const t = Array.isArray(raw) ? stringList(raw, 50).join(" ") : typeof raw === "string" ? cleanText(raw) : "";
  if (!t) return undefined;
  return t.length > max ? t.slice(0, max - 1).trimEnd() + "…" : t;
}
