/**
 * Turning what is wrong with a config file into one ConfigError: each line names the file and
 * the field path (`conf/fuel.yaml: fog.image_id: expected a positive integer, got "five"`).
 * Values of secret fields are never shown.
 */
import type { z } from "zod";
import { ConfigError } from "../errors";
import { displayPath } from "./paths";

export interface Issue {
  /** Field path in the file's own vocabulary (`networks[0].dhcp.rangeEnd`); "" for the file. */
  path: string;
  message: string;
}

/** YAML keys whose values are secrets: what was found there is never echoed. */
const SECRET_KEYS = new Set(["api_key", "user_key", "token", "pass", "key", "sealing_key"]);

/** Most issues a message lists; the rest are counted. */
const MAX_LISTED = 20;

export function fieldPath(segments: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

/** Short, single-line description of a value found in a file. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return JSON.stringify(shown);
  }
  return String(value);
}

export function configError(file: string, issues: readonly Issue[]): ConfigError {
  const name = displayPath(file);
  const lines = [
    ...new Set(issues.map((i) => (i.path ? `${name}: ${i.path}: ` : `${name}: `) + i.message)),
  ];
  const listed = lines.slice(0, MAX_LISTED);
  if (lines.length > MAX_LISTED) listed.push(`${name}: … and ${lines.length - MAX_LISTED} more`);
  return new ConfigError(listed.join("\n"));
}

export function throwIfIssues(file: string, issues: readonly Issue[]): void {
  if (issues.length > 0) throw configError(file, issues);
}

function isSecretPath(segments: readonly PropertyKey[]): boolean {
  return segments.some((s) => typeof s === "string" && SECRET_KEYS.has(s));
}

export function fromZodIssue(issue: z.core.$ZodIssue): Issue {
  const path = fieldPath(issue.path);
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => JSON.stringify(k)).join(", ");
    return { path, message: `unknown field${issue.keys.length > 1 ? "s" : ""} ${keys}` };
  }
  if (
    (issue.code === "invalid_type" || issue.code === "invalid_union") &&
    issue.input === undefined
  ) {
    return { path, message: "required" };
  }
  // Custom issues (cross-field checks) describe the problem themselves; their input is the
  // enclosing mapping, not the field.
  const shown = issue.code !== "custom" && "input" in issue && !isSecretPath(issue.path);
  return {
    path,
    message: shown ? `${issue.message}, got ${describeValue(issue.input)}` : issue.message,
  };
}

const TYPE_NAMES: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  null: "null",
};

/**
 * Fallback wording for issues whose schema has no message of its own, in the same
 * "expected …" style; passed to each parse so the project does not change zod's global config.
 */
export const errorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "too_small":
      if (issue.origin === "array") return `expected at least ${String(issue.minimum)} item(s)`;
      if (issue.origin === "string") return "must not be empty";
      return `expected at least ${String(issue.minimum)}`;
    case "too_big":
      if (issue.origin === "string") return `expected at most ${String(issue.maximum)} characters`;
      return `expected at most ${String(issue.maximum)}`;
    case "invalid_format":
      return `expected ${issue.format}`;
    default:
      return undefined;
  }
};

export function parseWith<S extends z.ZodType>(
  schema: S,
  data: unknown,
  file: string,
  extra: readonly Issue[] = [],
): z.output<S> {
  const result = schema.safeParse(data, { reportInput: true, error: errorMap });
  const issues = [...extra, ...(result.success ? [] : result.error.issues.map(fromZodIssue))];
  throwIfIssues(file, issues);
  return result.data as z.output<S>;
}
