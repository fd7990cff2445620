/**
 * Reading one YAML config file. A file another file refers to is blamed on that reference when
 * it cannot be read (`conf/fuel.yaml: hypervisor_config.networks: cannot read /abs (ENOENT)`);
 * a syntax error names the file and line but never quotes the line, which may hold a secret.
 */
import { readFile } from "node:fs/promises";
import { parseDocument } from "yaml";
import { ConfigError } from "../errors";
import { displayPath, errorCode } from "./paths";

/** The config file and field that named a file. */
export interface Reference {
  file: string;
  field: string;
}

export async function readTextFile(file: string, from: Reference | null): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    const where = from ? `${displayPath(from.file)}: ${from.field}` : displayPath(file);
    throw new ConfigError(`${where}: cannot read ${file} (${errorCode(error)})`);
  }
}

export async function readYamlFile(file: string, from: Reference | null): Promise<unknown> {
  const text = await readTextFile(file, from);
  const doc = parseDocument(text, { prettyErrors: true });
  const first = doc.errors[0];
  if (first) {
    const pos = first.linePos?.[0];
    const where = pos ? `line ${pos.line}, column ${pos.col}` : "somewhere";
    // yaml's message ends with " at line L, column C:" and a copy of the line: keep the cause only.
    const cause = first.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? "";
    throw new ConfigError(`${displayPath(file)}: ${where}: invalid YAML: ${cause}`);
  }
  try {
    return doc.toJS();
  } catch (error) {
    // e.g. an alias bomb: toJS refuses excessive alias expansion.
    const cause = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new ConfigError(`${displayPath(file)}: invalid YAML: ${cause}`);
  }
}
