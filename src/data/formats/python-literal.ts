// A small, safe parser for Python literals, as found in the Amazon 2014 metadata files (each line
// is `str(dict)`, not JSON): single/double-quoted strings with escapes (optionally u/b/r-prefixed),
// ints, floats, True/False/None, lists, tuples, sets and dicts, with trailing commas. Nothing is
// evaluated; anything else is a SyntaxError naming the offset.

export type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

export function parsePythonLiteral(text: string): PyValue {
  const p = new Parser(text);
  p.ws();
  const v = p.value();
  p.ws();
  if (p.pos < text.length) p.fail("unexpected text after the value");
  return v;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  "\\": "\\",
  "'": "'",
  '"': '"',
  n: "\n",
  t: "\t",
  r: "\r",
  b: "\b",
  f: "\f",
  v: "\v",
  a: "\x07",
  "\n": "",
};

class Parser {
  pos = 0;
  constructor(private readonly s: string) {}

  fail(what: string): never {
    throw new SyntaxError(`Python literal: ${what} at offset ${this.pos}`);
  }

  ws(): void {
    while (this.pos < this.s.length && " \t\r\n".includes(this.s[this.pos]!)) this.pos++;
  }

  value(): PyValue {
    const c = this.s[this.pos];
    if (c === undefined) this.fail("unexpected end of input");
    if (c === "{") return this.dictOrSet();
    if (c === "[") return this.sequence("[", "]");
    if (c === "(") return this.sequence("(", ")");
    if (c === "'" || c === '"') return this.string(false);
    if (
      (c === "u" || c === "U" || c === "b" || c === "B" || c === "r" || c === "R") &&
      /^[uUbBrR]{1,2}['"]/.test(this.s.slice(this.pos, this.pos + 3))
    ) {
      let raw = false;
      while (this.s[this.pos] !== "'" && this.s[this.pos] !== '"') raw ||= "rR".includes(this.s[this.pos++]!);
      return this.string(raw);
    }
    if (c === "-" || c === "+" || c === "." || (c >= "0" && c <= "9")) return this.number();
    for (const [word, v] of [
      ["True", true],
      ["False", false],
      ["None", null],
    ] as const) {
      if (this.s.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    this.fail(`unexpected character ${JSON.stringify(c)}`);
  }

  private number(): number {
    const m = /^[+-]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d+)?[lLjJ]?/.exec(this.s.slice(this.pos, this.pos + 64));
    if (!m) this.fail("malformed number");
    this.pos += m[0].length;
    if (/[jJ]$/.test(m[0])) this.fail("complex numbers are not supported");
    const n = Number(m[0].replace(/[_lL]/g, ""));
    if (Number.isNaN(n)) this.fail("malformed number");
    return n;
  }

  private string(raw: boolean): string {
    const q = this.s[this.pos]!;
    const triple = this.s.startsWith(q.repeat(3), this.pos);
    const end = triple ? q.repeat(3) : q;
    this.pos += end.length;
    let out = "";
    for (;;) {
      if (this.pos >= this.s.length) this.fail("unterminated string");
      if (this.s.startsWith(end, this.pos)) {
        this.pos += end.length;
        return out;
      }
      const c = this.s[this.pos]!;
      if (c === "\n" && !triple) this.fail("newline inside a string");
      if (c !== "\\") {
        out += c;
        this.pos++;
        continue;
      }
      const e = this.s[this.pos + 1];
      if (e === undefined) this.fail("unterminated string");
      if (raw) {
        out += c + e;
        this.pos += 2;
        continue;
      }
      this.pos += 2;
      if (e in SIMPLE_ESCAPES) out += SIMPLE_ESCAPES[e];
      else if (e === "x" || e === "u" || e === "U") {
        const len = e === "x" ? 2 : e === "u" ? 4 : 8;
        const hex = this.s.slice(this.pos, this.pos + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) this.fail(`bad \\${e} escape`);
        out += String.fromCodePoint(parseInt(hex, 16));
        this.pos += len;
      } else if (e >= "0" && e <= "7") {
        const m = /^[0-7]{1,3}/.exec(this.s.slice(this.pos - 1, this.pos + 2))!;
        out += String.fromCharCode(parseInt(m[0], 8));
        this.pos += m[0].length - 1;
      } else out += "\\" + e; // Python keeps unknown escapes verbatim
    }
  }

  private sequence(open: string, close: string): PyValue[] {
    this.pos++; // open
    const out: PyValue[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.pos] === close) {
        this.pos++;
        return out;
      }
      out.push(this.value());
      this.ws();
      if (this.s[this.pos] === ",") this.pos++;
      else if (this.s[this.pos] !== close) this.fail(`expected "," or "${close}" in ${open}${close}`);
    }
  }

  private dictOrSet(): PyValue {
    this.pos++; // {
    const dict: { [key: string]: PyValue } = {};
    const set: PyValue[] = [];
    let kind: "dict" | "set" | undefined;
    for (;;) {
      this.ws();
      if (this.s[this.pos] === "}") {
        this.pos++;
        return kind === "set" ? set : dict;
      }
      const key = this.value();
      this.ws();
      if (this.s[this.pos] === ":" && kind !== "set") {
        kind = "dict";
        this.pos++;
        this.ws();
        if (typeof key === "object" && key !== null) this.fail("unhashable dict key");
        dict[String(key)] = this.value();
      } else if (kind !== "dict") {
        kind = "set";
        set.push(key);
      } else this.fail('expected ":" in dict');
      this.ws();
      if (this.s[this.pos] === ",") this.pos++;
      else if (this.s[this.pos] !== "}") this.fail('expected "," or "}" in dict');
    }
  }
}
