/**
 * The code layout rules: lib/ is cloud-agnostic (AWS imports only in lib/adapters/aws/), which the
 * linter enforces, and the product code has no `any` type.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative, sep } from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeRun, runCommand } from "./helpers/subprocess";
import { repoRoot } from "./sim/lab";

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
