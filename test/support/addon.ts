// Engine tests skip, with a printed reason, on a checkout whose native addon is not built.
import { addonPath } from "../../src/engine/bindings.js";

/** The reason the addon cannot be used (printed as "skipped <what>: ..."), or null when it is built. */
export function addonMissing(what: string): string | null {
  try {
    addonPath();
    return null;
  } catch (e) {
    const reason = (e as Error).message;
    console.log(`skipped ${what}: ${reason}`);
    return reason;
  }
}
