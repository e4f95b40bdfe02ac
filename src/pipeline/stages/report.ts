// Report stage: report.html from the run folder's result files (see src/report/).
import { writeReport } from "../../report/index.js";
import type { StageContext, StageSpec } from "../stages.js";

export function reportSpec({ c }: StageContext): StageSpec {
  return { stage: "report", inputs: {}, outputs: ["report.html"], run: async () => void writeReport(c.runDir) };
}
