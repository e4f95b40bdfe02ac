// A LoRA adapter loaded once per model; pass `{adapter, scale}` in a call's `lora` option to use it.
import type { NativeLoraAdapter, NativeLoraChoice } from "./bindings.js";

export class LoraAdapter {
  #native: NativeLoraAdapter | undefined;
  readonly path: string;

  /** @internal */
  constructor(handle: NativeLoraAdapter, path: string) {
    this.#native = handle;
    this.path = path;
  }

  /** The adapter's `adapter.lora.alpha`, if the file records it. */
  get alpha(): number | null {
    return this.#native?.alpha ?? null;
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /** Frees the adapter; the model stays loaded. Idempotent. */
  dispose(): void {
    this.#native?.dispose();
    this.#native = undefined;
  }

  /** @internal */
  handle(): NativeLoraAdapter {
    if (!this.#native) throw new Error(`LoRA adapter ${this.path} was disposed; load it again with model.loadLora()`);
    return this.#native;
  }
}

export interface LoraChoice {
  adapter: LoraAdapter;
  scale?: number;
}

/** @internal */
export function toNativeLora(lora: readonly LoraChoice[] | undefined): NativeLoraChoice[] | undefined {
  if (!lora) return undefined;
  return lora.map((c, i) => {
    if (!(c?.adapter instanceof LoraAdapter))
      throw new TypeError(`lora[${i}].adapter must be a LoraAdapter from model.loadLora()`);
    const scale = c.scale ?? 1;
    if (typeof scale !== "number" || !Number.isFinite(scale))
      throw new RangeError(`lora[${i}].scale must be a finite number, got ${String(scale)}`);
    return { adapter: c.adapter.handle(), scale };
  });
}
