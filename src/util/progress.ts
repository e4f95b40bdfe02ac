// A one-line progress bar on stderr: count, rate, ETA and free-form fields (loss, tokens/s ...).
// Redraws at most every 100 ms; when stderr is not a TTY it prints a line every 5 s instead.

export interface ProgressFields {
  [name: string]: string | number;
}

export class ProgressBar {
  private done = 0;
  private readonly start = Date.now();
  private lastDraw = 0;
  private lastDrawnDone = -1;
  private fields: ProgressFields = {};

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  tick(n = 1, fields?: ProgressFields): void {
    this.done += n;
    if (fields) this.fields = { ...this.fields, ...fields };
    const now = Date.now();
    const interval = this.stream.isTTY ? 100 : 5000;
    if (now - this.lastDraw >= interval || this.done >= this.total) {
      this.lastDraw = now;
      this.draw();
    }
  }

  finish(): void {
    if (this.lastDrawnDone !== this.done) this.draw();
    if (this.stream.isTTY) this.stream.write("\n");
  }

  private draw(): void {
    this.lastDrawnDone = this.done;
    const elapsed = (Date.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const eta = rate > 0 ? (this.total - this.done) / rate : 0;
    const width = 24;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, "-");
    const extra = Object.entries(this.fields)
      .map(([k, v]) => `${k} ${typeof v === "number" ? formatNumber(v) : v}`)
      .join("  ");
    const line = `${this.label} [${bar}] ${this.done}/${this.total} ${rate.toFixed(1)}/s eta ${formatSeconds(eta)}${extra ? "  " + extra : ""}`;
    if (this.stream.isTTY) this.stream.write(`\r\x1b[2K${line}`);
    else this.stream.write(`${line}\n`);
  }
}

function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60);
  return m > 0
    ? `${m}m${Math.round(s % 60)
        .toString()
        .padStart(2, "0")}s`
    : `${s.toFixed(0)}s`;
}
