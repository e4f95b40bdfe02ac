// The progress bar lives in src/util/progress.ts (the pipeline and the library draw it too, and
// must not depend on the command line); re-exported here for the commands.
export { ProgressBar } from "../util/progress.js";
