// The piscina worker of the tokenizing pool: loads the model's tokenizer once (vocabOnly: no
// weights) and turns a chunk of SFT records into tokens with roles, exactly as the trainer does.
import { workerData } from "piscina";
import { loadModel } from "../engine/model.js";
import { tokenizeSample, type SftRecord, type TokenizedSample } from "./samples.js";

export interface TokenizeJob {
  modelPath: string;
}

const model = loadModel((workerData as TokenizeJob).modelPath, { vocabOnly: true, threads: 1 });

export default async function tokenizeChunk(records: SftRecord[]): Promise<TokenizedSample[]> {
  const m = await model;
  if (!(m.info.eos >= 0)) throw new Error(`${m.info.path} has no end-of-sequence token; training needs one to end each sample`);
  const tok = { tokenize: (t: string, o?: { addBos?: boolean; special?: boolean }) => m.tokenize(t, o), eosToken: m.info.eos };
  return records.map((r) => tokenizeSample(tok, r));
}
