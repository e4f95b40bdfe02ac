// examples/kubernetes against the Kubernetes API schema, offline like kubeconform: the
// batch/v1 Job validator that the npm package kubernetes-models compiles from the Kubernetes
// OpenAPI spec (types, enums, formats, required fields), plus a strict pass for unknown fields,
// which that schema lets through and the API server refuses (kubectl's default field validation
// is Strict): each manifest is type-checked as an object literal against the package's IJob
// type, where a misspelt field is an excess property. Then what an Indexed Job needs for
// `--shard auto`, which the schema cannot say.
//
// kubernetes-models is not a dependency of msr-rec: it is installed into a temp folder on first
// use (npm), and the tests skip, saying so, when npm cannot fetch it.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { packageRoot } from "../src/util/paths.js";

const MODELS = "kubernetes-models@5.1.0";
const manifestsDir = join(packageRoot, "examples", "kubernetes");
const manifests = readdirSync(manifestsDir)
  .filter((f) => f.endsWith(".yaml"))
  .sort();
// The fields these tests read or break on purpose; validation sees the whole manifest.
interface Container {
  command: string[];
  env?: { name: string; value?: string }[];
  resources?: unknown;
  resource?: unknown;
}
interface JobManifest {
  spec: {
    completionMode?: unknown;
    completions?: unknown;
    parallelism?: number;
    backoffLimitPerIndex?: number;
    template: { spec: { restartPolicy?: string; containers: Container[] } };
  };
}
const load = (f: string) => parseYaml(readFileSync(join(manifestsDir, f), "utf8")) as JobManifest;

/** A folder holding node_modules/kubernetes-models, installed once per machine; null: npm failed. */
function modelsDir(): string | null {
  const dir = join(tmpdir(), `msr-rec-${MODELS.replace("@", "-")}`);
  if (existsSync(join(dir, "node_modules", "kubernetes-models", "package.json"))) return dir;
  const staging = mkdtempSync(`${dir}.tmp-`);
  const r = spawnSync(
    "npm",
    [
      "install",
      "--no-save",
      "--no-package-lock",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      "--prefix",
      staging,
      MODELS,
    ],
    { encoding: "utf8" },
  );
  if (r.status !== 0) {
    rmSync(staging, { recursive: true, force: true });
    console.warn(`Kubernetes schema tests skipped: npm could not install ${MODELS}:\n${r.stderr}`);
    return null;
  }
  try {
    renameSync(staging, dir); // a parallel run may have won the race: keep its copy
  } catch {
    rmSync(staging, { recursive: true, force: true });
  }
  return dir;
}

type Validate = (manifest: object) => void;
let dir: string | null = null;
let validate: Validate;

beforeAll(async () => {
  dir = modelsDir();
  if (!dir) return;
  const { Job } = (await import(
    pathToFileURL(join(dir, "node_modules", "kubernetes-models", "batch", "v1", "Job.js")).href
  )) as { Job: new (m: object) => { validate(): void } };
  validate = (m) => new Job(m).validate();
}, 300_000);

/** Schema errors of a manifest ("" when it is valid). */
function schemaErrors(m: object): string {
  try {
    validate(m);
    return "";
  } catch (e) {
    return (e as Error).message;
  }
}

/** Type errors of each manifest as a kubernetes-models IJob literal: unknown fields among them. */
function strictErrors(named: Record<string, object>): string[] {
  const file = join(dir!, `manifests-${process.pid}.ts`);
  const lines = Object.entries(named).map(
    ([name, m]) =>
      `// ${name}\nexport const m${Object.keys(named).indexOf(name)}: IJob = ${JSON.stringify(m, null, 2)};`,
  );
  writeFileSync(file, `import type { IJob } from "kubernetes-models/batch/v1/Job";\n${lines.join("\n")}\n`);
  try {
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      skipLibCheck: true,
      types: [],
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
      const owner = d.file
        ? d.file.text
            .split("\n")
            .slice(0, line + 1)
            .reverse()
            .find((l) => l.startsWith("// "))
        : undefined;
      return `${owner?.slice(3) ?? "?"}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`;
    });
  } finally {
    rmSync(file, { force: true });
  }
}

describe("examples/kubernetes against the Kubernetes API schema", () => {
  it("every manifest is a valid batch/v1 Job", (ctx) => {
    if (!dir) return ctx.skip(`${MODELS} could not be installed (see the printed reason)`);
    expect(manifests).toEqual([
      "base.yaml",
      "infer-merge.yaml",
      "infer-shards.yaml",
      "shard-retry.yaml",
      "synthesize-merge.yaml",
      "synthesize-shards.yaml",
    ]);
    expect(manifests.map((f) => `${f}: ${schemaErrors(load(f)) || "valid"}`)).toEqual(
      manifests.map((f) => `${f}: valid`),
    );
    expect(strictErrors(Object.fromEntries(manifests.map((f) => [f, load(f)])))).toEqual([]);
  }, 120_000);

  it("the checks catch a wrong type, a value outside an enum and a misspelt field", (ctx) => {
    if (!dir) return ctx.skip(`${MODELS} could not be installed (see the printed reason)`);
    const job = () => load("synthesize-shards.yaml");
    const wrongType = job();
    wrongType.spec.completions = "8";
    expect(schemaErrors(wrongType)).toMatch(/spec\/completions must be integer/);
    const badEnum = job();
    badEnum.spec.completionMode = "indexed";
    expect(schemaErrors(badEnum)).toMatch(/spec\/completionMode must be equal to one of the allowed values/);
    const typo = job();
    const container = typo.spec.template.spec.containers[0]!;
    container.resource = container.resources;
    delete container.resources;
    expect(schemaErrors(typo)).toBe(""); // the schema allows unknown fields ...
    expect(strictErrors({ typo })).toEqual([
      expect.stringMatching(/^typo: .*'"resource"' does not exist in type 'IContainer'/),
    ]); // ... the strict pass does not
  }, 120_000);
});

describe("examples/kubernetes Indexed Jobs for --shard auto", () => {
  // Kubernetes retries a failed pod of an Indexed Job under the same JOB_COMPLETION_INDEX, so a
  // retry redoes the same shard (unlike a task resubmitted alone to Slurm). The count is not in
  // the pod's environment: MSR_REC_SHARD_COUNT must repeat `completions`.
  for (const f of manifests.filter((n) => n.endsWith("-shards.yaml"))) {
    it(`${f}: Indexed, retries per index, never restarts in place, and tells the pod the count`, () => {
      const spec = load(f).spec;
      const pod = spec.template.spec;
      expect(spec.completionMode).toBe("Indexed");
      // backoffLimitPerIndex retries each index on its own (one failing shard does not use up
      // the others' retries); the API accepts it only with restartPolicy Never.
      expect(spec.backoffLimitPerIndex).toBeGreaterThanOrEqual(1);
      expect(pod.restartPolicy).toBe("Never");
      expect(spec.parallelism).toBeLessThanOrEqual(Number(spec.completions));
      const container = pod.containers[0]!;
      expect(Number(container.env?.find((e) => e.name === "MSR_REC_SHARD_COUNT")?.value)).toBe(spec.completions);
      expect(container.command).toEqual(expect.arrayContaining(["--shard", "auto"]));
    });
  }
});
