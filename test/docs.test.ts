/**
 * The README and docs/ held to the code where a test can read both: the functions README says
 * serverless.yml declares, its layout table against the tree, and every field of the config
 * schemas against docs/configuration.md's tables (each way).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import * as schemas from "../lib/config/schema";
import { repoRoot } from "../sim/lab";

const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
const configurationDoc = readFileSync(join(repoRoot, "docs", "configuration.md"), "utf8");

/** The lines of the README section that starts with `heading`, up to the next heading. */
function section(text: string, heading: string): string {
  const start = text.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`no "${heading}" in the text`);
  const rest = text.slice(start + heading.length + 2);
  const next = rest.search(/\n#{2,3} /);
  return next < 0 ? rest : rest.slice(0, next);
}

/** The backticked names in a text. */
const backticked = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? "");

describe("the README's serverless functions", () => {
  const declared = Object.keys(
    (parse(readFileSync(join(repoRoot, "serverless.yml"), "utf8")) as { functions: object })
      .functions,
  ).sort();
  // The list under "serverless.yml … declares:", up to the packaging item.
  const inAws = section(readme, "### In AWS");
  const list = inAws.slice(inAws.indexOf("declares:"), inAws.indexOf("- each function packaged"));
  // Each item names its function first; the steps' item names one per step.
  const named = list
    .split("\n- ")
    .slice(1)
    .flatMap((item) => {
      const names = backticked(item.split(";")[0] ?? "");
      return item.startsWith("one function per workflow step") ? names : names.slice(0, 1);
    })
    .sort();

  it("are read from the README", () => {
    expect(named).toContain("poll");
    expect(named).toContain("startImaging");
  });

  it("are exactly the functions serverless.yml declares", () => {
    expect(named).toEqual(declared);
  });
});

describe("the README's layout table", () => {
  const table = section(readme, "### Layout")
    .split("\n")
    .filter((line) => line.startsWith("| `"));
  const paths = table.flatMap((line) => backticked(line.split("|")[1] ?? ""));

  it("is read from the README", () => {
    expect(paths).toContain("lib/app/");
    expect(paths.length).toBeGreaterThan(15);
  });

  it("names only what exists", () => {
    const missing = paths.filter((path) => {
      if (path === "lib/*.ts") return false;
      try {
        return !statSync(join(repoRoot, path)).isDirectory();
      } catch {
        return true;
      }
    });
    expect(missing).toEqual([]);
  });

  it("names every folder at the top and in lib/, and lib/'s own files", () => {
    const folders = (dir: string) =>
      readdirSync(join(repoRoot, dir), { withFileTypes: true })
        .filter((entry) => entry.isDirectory() && !["node_modules", ".git"].includes(entry.name))
        .filter((entry) => !entry.name.startsWith(".") || entry.name === ".ci")
        .map((entry) => `${dir === "." ? "" : `${dir}/`}${entry.name}/`);
    // Made by the tools, not part of the tree: the demo's state, build output.
    const generated = new Set(["var/", ".serverless/", ".esbuild/"]);
    // lib/ itself is described by its folders.
    generated.add("lib/");
    const expected = [...folders("."), ...folders("lib")].filter((f) => !generated.has(f));
    expect(expected.filter((folder) => !paths.includes(folder))).toEqual([]);
    const libFiles = readdirSync(join(repoRoot, "lib")).filter((name) => name.endsWith(".ts"));
    expect(libFiles.length === 0 || paths.includes("lib/*.ts")).toBe(true);
  });
});

type ZodLike = { _zod?: { def?: Record<string, unknown> } };

/** Every key of every object schema reachable from `schema`. */
function schemaFields(schema: unknown, into = new Set<string>(), seen = new Set<unknown>()) {
  if (typeof schema !== "object" || schema === null || seen.has(schema)) return into;
  seen.add(schema);
  const def = (schema as ZodLike)._zod?.def;
  if (!def) return into;
  if (def.type === "object" && typeof def.shape === "object" && def.shape !== null) {
    for (const [key, value] of Object.entries(def.shape)) {
      into.add(key);
      schemaFields(value, into, seen);
    }
  }
  // Wrappers (optional, default, nullable, pipe and preprocess), lists, maps and unions.
  for (const key of ["innerType", "in", "out", "element", "valueType", "left", "right"]) {
    schemaFields(def[key], into, seen);
  }
  if (Array.isArray(def.options))
    for (const option of def.options) schemaFields(option, into, seen);
  return into;
}

describe("docs/configuration.md", () => {
  const fields = new Set<string>();
  for (const schema of [
    schemas.pharosSchema,
    schemas.installerSchema,
    schemas.inventorySchema,
    schemas.networkFileSchema,
    schemas.domainFileSchema,
    schemas.vpnSchema,
  ]) {
    schemaFields(schema, fields);
  }
  // A table row's field, dotted (`fog.api_key`) or a list's items (`networks[]`), in parts.
  const documented = new Set(
    configurationDoc
      .split("\n")
      .flatMap((line) => /^\| `([^`]+)`/.exec(line)?.[1]?.split(".") ?? [])
      .map((part) => part.replace(/\[\]$/, "")),
  );

  it("and the schemas are both read", () => {
    expect(fields).toContain("booking_retention_days");
    expect(fields).toContain("host_identity");
    expect(documented).toContain("booking_retention_days");
  });

  it("has a row for every field the schemas take", () => {
    // `{file: path}`, the form every secret may take, is the Secrets section's subject.
    expect(configurationDoc).toContain("`{file: path}`");
    const undocumented = [...fields].filter((f) => f !== "file" && !documented.has(f)).sort();
    expect(undocumented).toEqual([]);
  });

  it("documents no field the schemas do not take", () => {
    expect([...documented].filter((f) => !fields.has(f)).sort()).toEqual([]);
  });
});

describe("the README's Coming from laas-fog", () => {
  const seed = readFileSync(join(repoRoot, "..", "shared", "seed", "laas-fog-README.txt"), "utf8");
  const coming = section(readme, "### Coming from laas-fog");
  const said = new Set(
    backticked(coming).flatMap((name) => name.split(/[\s.]+/).map((n) => n.replace(/\[\]$/, ""))),
  );

  // The seed lists each file's fields as `-name`, `--name`, `---name` at the start of a line.
  const seedFields = [
    ...new Set([...seed.matchAll(/^-{1,3}([A-Za-z_-]+)\s/gm)].map((m) => m[1] ?? "")),
  ];
  const seedCommands = [...new Set([...seed.matchAll(/source\/[\w.]+/g)].map((m) => m[0]))];

  it("reads the seed's fields and commands", () => {
    expect(seedFields).toEqual(expect.arrayContaining(["dhcp_server", "poling", "brAddr"]));
    expect(seedCommands).toEqual(expect.arrayContaining(["source/listen.py", "source/stop.sh"]));
  });

  it("names every field of laas-fog", () => {
    expect(seedFields.filter((field) => !said.has(field))).toEqual([]);
  });

  it("names every command of laas-fog", () => {
    const commands = backticked(coming).join(" ");
    expect(seedCommands.filter((command) => !commands.includes(command))).toEqual([]);
  });
});
