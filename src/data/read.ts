// One entry point for every raw format `msr-rec prepare` understands.
import { readAmazon } from "./formats/amazon.js";
import { readLlara } from "./formats/llara.js";
import { readRecbole } from "./formats/recbole.js";
import type { RawDataset, ReadOptions } from "./types.js";

export const SOURCE_FORMATS = ["amazon2014", "amazon2018", "amazon2023", "recbole", "llara"] as const;
export type SourceFormat = (typeof SOURCE_FORMATS)[number];

export async function readSource(
  format: SourceFormat,
  input: string,
  options: ReadOptions & { meta?: string } = {},
): Promise<RawDataset> {
  switch (format) {
    case "amazon2014":
      return readAmazon("2014", input, options.meta, options);
    case "amazon2018":
      return readAmazon("2018", input, options.meta, options);
    case "amazon2023":
      return readAmazon("2023", input, options.meta, options);
    case "recbole":
      return readRecbole(input, options);
    case "llara":
      return readLlara(input, options);
    default:
      throw new Error(`unknown format "${format as string}"; known: ${SOURCE_FORMATS.join(", ")}, synthetic`);
  }
}
