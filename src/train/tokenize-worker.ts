// The piscina worker of the tokenizing pool: loads the model's tokenizer once (vocabOnly: no
// weights) and turns a chunk of SFT records into tokens with roles, exactly as the trainer does.
import { workerData } from "piscina";
import { loadModel } from "../engine/model.js";
import { modelSampleTokenizer, tokenizeSample, type SftRecord } from "./samples.js";
import type { TokenizedSample } from "../engine/train-batch.js";

export interface TokenizeJob {
  modelPath: string;
}

const model = loadModel((workerData as TokenizeJob).modelPath, { vocabOnly: true, threads: 1 });

export default async function tokenizeChunk(records: SftRecord[]): Promise<TokenizedSample[]> {
  const m = await model;
  const tok = modelSampleTokenizer(m);
  return records.map((r) => tokenizeSample(tok, r));
}
