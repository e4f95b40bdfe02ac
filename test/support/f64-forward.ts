// A float64 forward pass of the tiny converter-layout fixtures (LLaMA with optional rope_freqs,
// Qwen3 with Q/K norms; F32/F16/BF16 weights read exactly), written from the architectures'
// definitions: every activation, the attention and the log-softmax in float64. The accuracy
// yardstick of the scorer's numerics (node-llama-cpp's own float32/F16 kernels are not exact).
import { findTensor, metaNumber, metaString, readGguf, readTensorF32 } from "../../src/gguf/reader.js";

export interface F64Model {
  vocab: number;
  /** log P(target | tokens[0..p]) for each [p, target], the tokens decoded as one causal sequence. */
  logprobs(tokens: ArrayLike<number>, positions: [number, number][]): number[];
}

export function loadF64Model(path: string): F64Model {
  const file = readGguf(path);
  const meta = file.metadata;
  const arch = metaString(meta, "general.architecture")!;
  const k = (s: string) => metaNumber(meta, `${arch}.${s}`)!;
  const nEmbd = k("embedding_length");
  const nHead = k("attention.head_count");
  const nKv = k("attention.head_count_kv");
  const eps = k("attention.layer_norm_rms_epsilon");
  const base = k("rope.freq_base");
  const has = (n: string) => file.tensors.some((t) => t.name === n);
  const T = (n: string) => Float64Array.from(readTensorF32(file, n));
  const embd = T("token_embd.weight");
  const nVocab = embd.length / nEmbd;
  const hd = findTensor(file, "blk.0.attn_q.weight").shape[1]! / nHead;
  const neox = arch === "qwen3" || arch === "qwen2";
  const freqs = has("rope_freqs.weight") ? T("rope_freqs.weight") : null;
  const layers = Array.from({ length: k("block_count") }, (_, i) => {
    const b = `blk.${i}.`;
    const opt = (n: string) => (has(b + n) ? T(b + n) : null);
    return {
      an: T(b + "attn_norm.weight"),
      wq: T(b + "attn_q.weight"),
      wk: T(b + "attn_k.weight"),
      wv: T(b + "attn_v.weight"),
      wo: T(b + "attn_output.weight"),
      bq: opt("attn_q.bias"),
      bk: opt("attn_k.bias"),
      bv: opt("attn_v.bias"),
      qn: opt("attn_q_norm.weight"),
      kn: opt("attn_k_norm.weight"),
      fn: T(b + "ffn_norm.weight"),
      wg: T(b + "ffn_gate.weight"),
      wu: T(b + "ffn_up.weight"),
      wd: T(b + "ffn_down.weight"),
    };
  });
  const outNorm = T("output_norm.weight");
  const wout = has("output.weight") ? T("output.weight") : embd;

  // y[r] = sum_c W[r * nIn + c] x[c] (ggml: ne0 = nIn varies fastest), plus an optional bias.
  function matvec(W: Float64Array, x: Float64Array, nIn: number, nOut: number, bias: Float64Array | null = null) {
    const y = new Float64Array(nOut);
    for (let r = 0; r < nOut; r++) {
      let s = bias ? bias[r]! : 0;
      const o = r * nIn;
      for (let c = 0; c < nIn; c++) s += W[o + c]! * x[c]!;
      y[r] = s;
    }
    return y;
  }
  function rms(x: Float64Array, w: Float64Array, off = 0, n = x.length) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[off + i]! * x[off + i]!;
    const sc = 1 / Math.sqrt(s / n + eps);
    for (let i = 0; i < n; i++) x[off + i] = x[off + i]! * sc * w[i]!;
  }
  function rope(x: Float64Array, off: number, pos: number) {
    const half = hd / 2;
    for (let i = 0; i < half; i++) {
      let theta = pos * Math.pow(base, (-2 * i) / hd);
      if (freqs) theta /= freqs[i]!;
      const c = Math.cos(theta);
      const s = Math.sin(theta);
      const a = neox ? off + i : off + 2 * i;
      const b = neox ? off + i + half : off + 2 * i + 1;
      const x0 = x[a]!;
      const x1 = x[b]!;
      x[a] = x0 * c - x1 * s;
      x[b] = x0 * s + x1 * c;
    }
  }

  function logprobs(tokens: ArrayLike<number>, positions: [number, number][]): number[] {
    const L = tokens.length;
    let xs: Float64Array[] = Array.from({ length: L }, (_, p) =>
      embd.slice(tokens[p]! * nEmbd, (tokens[p]! + 1) * nEmbd),
    );
    for (const ly of layers) {
      const Q: Float64Array[] = [];
      const K: Float64Array[] = [];
      const V: Float64Array[] = [];
      for (let p = 0; p < L; p++) {
        const h = Float64Array.from(xs[p]!);
        rms(h, ly.an);
        const q = matvec(ly.wq, h, nEmbd, nHead * hd, ly.bq);
        const kk = matvec(ly.wk, h, nEmbd, nKv * hd, ly.bk);
        for (let hh = 0; hh < nHead; hh++) {
          if (ly.qn) rms(q, ly.qn, hh * hd, hd);
          rope(q, hh * hd, p);
        }
        for (let hh = 0; hh < nKv; hh++) {
          if (ly.kn) rms(kk, ly.kn, hh * hd, hd);
          rope(kk, hh * hd, p);
        }
        Q.push(q);
        K.push(kk);
        V.push(matvec(ly.wv, h, nEmbd, nKv * hd, ly.bv));
      }
      const next: Float64Array[] = [];
      for (let p = 0; p < L; p++) {
        const att = new Float64Array(nHead * hd);
        for (let hh = 0; hh < nHead; hh++) {
          const kh = Math.floor(hh / (nHead / nKv));
          const s = new Float64Array(p + 1);
          let mx = -Infinity;
          for (let j = 0; j <= p; j++) {
            let d = 0;
            for (let i = 0; i < hd; i++) d += Q[p]![hh * hd + i]! * K[j]![kh * hd + i]!;
            s[j] = d / Math.sqrt(hd);
            mx = Math.max(mx, s[j]!);
          }
          let z = 0;
          for (let j = 0; j <= p; j++) z += s[j] = Math.exp(s[j]! - mx);
          for (let j = 0; j <= p; j++)
            for (let i = 0; i < hd; i++) att[hh * hd + i] += (s[j]! / z) * V[j]![kh * hd + i]!;
        }
        const o = matvec(ly.wo, att, nHead * hd, nEmbd);
        const x = Float64Array.from(xs[p]!);
        for (let i = 0; i < nEmbd; i++) x[i] += o[i]!;
        const h = Float64Array.from(x);
        rms(h, ly.fn);
        const nFf = ly.wg.length / nEmbd;
        const g = matvec(ly.wg, h, nEmbd, nFf);
        const u = matvec(ly.wu, h, nEmbd, nFf);
        for (let i = 0; i < nFf; i++) g[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
        const d = matvec(ly.wd, g, nFf, nEmbd);
        for (let i = 0; i < nEmbd; i++) x[i] += d[i]!;
        next.push(x);
      }
      xs = next;
    }
    return positions.map(([p, target]) => {
      const h = Float64Array.from(xs[p]!);
      rms(h, outNorm);
      const lg = matvec(wout, h, nEmbd, nVocab);
      let mx = -Infinity;
      for (const v of lg) mx = Math.max(mx, v);
      let z = 0;
      for (const v of lg) z += Math.exp(v - mx);
      return lg[target]! - mx - Math.log(z);
    });
  }

  return { vocab: nVocab, logprobs };
}
