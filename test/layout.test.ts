/**
 * The code layout rules: lib/ is cloud-agnostic (AWS imports only in lib/adapters/aws/), which the
 * linter enforces, and the product code has no `any` type.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative, sep } from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../sim/lab";
import { describeRun, runCommand } from "../sim/subprocess";

const biome = join(repoRoot, "node_modules", ".bin", "biome");
const RULE = "lint/style/noRestrictedImports";
const MESSAGE = "lib/ is cloud-agnostic: AWS imports belong in lib/adapters/aws/.";

/** Repo-relative paths of the .ts files under `dir`. */
function tsFiles(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts"))
    .map((file) => join(dir, file).split(sep).join("/"))
    .sort();
}

interface Diagnostic {
  rule: string;
  file: string;
  message: string;
}

/** Biome's `github` reporter: `::error title=<rule>,file=<path>,line=…::<message>` per line. */
function parseGithubReport(output: string, root: string): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const line of output.split("\n")) {
    const match = /^::\w+ title=([^,]+),file=([^,]+),[^:]*::(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, rule = "", file = "", message = ""] = match;
    const path = isAbsolute(file) ? relative(root, file) : file;
    diagnostics.push({ rule, file: path.split(sep).join("/"), message });
  }
  return diagnostics;
}

describe("the linter keeps AWS imports in lib/adapters/aws/", () => {
  const probe = [
    'import { SFNClient } from "@aws-sdk/client-sfn";',
    "",
    // The explicit any makes the linter report on both files, which shows both were linted.
    "export const probe: any = SFNClient;",
    "",
  ].join("\n");
  let dir: string;
  let diagnostics: Diagnostic[];

  beforeAll(async () => {
    // Biome reports absolute paths: resolve symlinks (macOS's /tmp) so they compare.
    dir = await realpath(await mkdtemp(join(tmpdir(), "laas-layout-")));
    const config = JSON.parse(await readFile(join(repoRoot, "biome.json"), "utf8")) as Record<
      string,
      unknown
    >;
    // No git repository here, and no node_modules for the schema to point into.
    delete config.vcs;
    delete config.$schema;
    await writeFile(join(dir, "biome.json"), JSON.stringify(config, null, 2));
    for (const file of ["lib/lifecycle/probe.ts", "lib/adapters/aws/probe.ts"]) {
      await mkdir(join(dir, file, ".."), { recursive: true });
      await writeFile(join(dir, file), probe);
    }
    const linted = await runCommand(
      biome,
      ["lint", "--reporter=github", "lib/lifecycle/probe.ts", "lib/adapters/aws/probe.ts"],
      { cwd: dir },
    );
    // Both files have errors (the explicit any at least), so biome must say so.
    expect(linted.code, describeRun(linted)).toBe(1);
    diagnostics = parseGithubReport(linted.stdout, dir);
  }, 60_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("lints both files", () => {
    const anys = diagnostics.filter((d) => d.rule === "lint/suspicious/noExplicitAny");
    expect(anys.map((d) => d.file).sort()).toEqual([
      "lib/adapters/aws/probe.ts",
      "lib/lifecycle/probe.ts",
    ]);
  });

  it("reports an AWS import elsewhere in lib/, with the project's message", () => {
    expect(diagnostics).toContainEqual({
      rule: RULE,
      file: "lib/lifecycle/probe.ts",
      message: MESSAGE,
    });
  });

  it("allows it in lib/adapters/aws/", () => {
    expect(diagnostics.filter((d) => d.rule === RULE).map((d) => d.file)).toEqual([
      "lib/lifecycle/probe.ts",
    ]);
  });
});

describe("the sources", () => {
  const libFiles = tsFiles("lib");

  it("are found", () => {
    expect(libFiles).toContain("lib/workflow/definitions.ts");
    expect(libFiles).toContain("lib/adapters/aws/sfn-engine.ts");
  });

  it("import the AWS SDK only in lib/adapters/aws/", () => {
    const importing = libFiles.filter((file) => {
      const source = readFileSync(join(repoRoot, file), "utf8");
      return /from\s+["']@aws-sdk|import\s*\(\s*["']@aws-sdk/.test(source);
    });
    expect(importing.length).toBeGreaterThan(0);
    expect(importing.filter((file) => !file.startsWith("lib/adapters/aws/"))).toEqual([]);
  });

  it.each(["lib", "functions"])("of %s/ use no `any` type", (dir) => {
    const found: string[] = [];
    for (const file of tsFiles(dir)) {
      const source = ts.createSourceFile(
        file,
        readFileSync(join(repoRoot, file), "utf8"),
        ts.ScriptTarget.Latest,
        true,
      );
      const visit = (node: ts.Node) => {
        if (node.kind === ts.SyntaxKind.AnyKeyword) {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
          found.push(`${file}:${line + 1}: ${node.parent.getText(source)}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    expect(found).toEqual([]);
  });
});

/** The relative imports of a source file (static, dynamic, re-exports), as repo-relative files. */
function importsOf(file: string): string[] {
  const source = readFileSync(join(repoRoot, file), "utf8");
  const found: string[] = [];
  for (const match of source.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
    const target = join(file, "..", match[1] ?? "")
      .split(sep)
      .join("/");
    if (/\.(ts|mjs|cjs)$/.test(target)) found.push(target);
    // A folder's import is of its index.ts (functions/steps/<name>/).
    else if (existsSync(join(repoRoot, target, "index.ts"))) found.push(`${target}/index.ts`);
    else found.push(`${target}.ts`);
  }
  return found;
}

/** The import circles among `files` (each as the files on it, from its smallest). */
function importCircles(files: string[]): string[][] {
  const known = new Set(files);
  const edges = new Map(files.map((file) => [file, importsOf(file).filter((t) => known.has(t))]));
  const circles = new Set<string>();
  const walk = (file: string, path: string[]) => {
    const at = path.indexOf(file);
    if (at >= 0) {
      const circle = path.slice(at);
      const start = circle.indexOf([...circle].sort()[0] ?? "");
      circles.add(JSON.stringify([...circle.slice(start), ...circle.slice(0, start)]));
      return;
    }
    if (path.length > 40) return;
    for (const next of edges.get(file) ?? []) walk(next, [...path, file]);
  };
  for (const file of files) walk(file, []);
  return [...circles].map((circle) => JSON.parse(circle) as string[]);
}

describe("the layers", () => {
  const libFiles = tsFiles("lib");

  it("are read from the sources' imports", () => {
    expect(importsOf("lib/lifecycle/poll.ts")).toContain("lib/ports/runtime.ts");
    expect(importsOf("functions/cloud-runtime.ts")).toContain("functions/embedded-runtime.ts");
    expect(importsOf("functions/steps.ts")).toContain("functions/steps/buildPod/index.ts");
  });

  it("compose in lib/app/: nothing below it imports from there", () => {
    const below = libFiles.filter((f) => !f.startsWith("lib/app/") && !f.startsWith("lib/cli/"));
    const offending = below.flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith("lib/app/"))
        .map((target) => `${file} → ${target}`),
    );
    expect(offending).toEqual([]);
  });

  it("keep the command above the composition: lib/app/ imports nothing of lib/cli/", () => {
    const offending = tsFiles("lib/app").flatMap((file) =>
      importsOf(file).filter((target) => target.startsWith("lib/cli/")),
    );
    expect(offending).toEqual([]);
  });

  it("ship the simulated lab outside test/: the demo and sim/ import nothing from there", () => {
    // scripts/chaos.ts is the chaos suite's runner, and a part of the tests.
    const shipped = ["scripts/demo.ts", "scripts/sim-lab.ts", ...tsFiles("sim"), "bin/laas.mjs"];
    const offending = shipped.flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith("test/"))
        .map((target) => `${file} → ${target}`),
    );
    expect(offending).toEqual([]);
  });

  it("finds an import circle where there is one", () => {
    expect(importCircles(["test/fixtures/circle-a.ts", "test/fixtures/circle-b.ts"])).toEqual([
      ["test/fixtures/circle-a.ts", "test/fixtures/circle-b.ts"],
    ]);
  });

  it("have no import circle in functions/", () => {
    expect(importCircles(tsFiles("functions"))).toEqual([]);
  });
});
