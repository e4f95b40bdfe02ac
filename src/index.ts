// msr-rec public API.
export * from "./engine/index.js";
