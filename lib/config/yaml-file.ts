/**
 * Reading one YAML config file. A file another file refers to is blamed on that reference when
 * it cannot be read (`conf/fuel.yaml: hypervisor_config.networks: cannot read /abs (ENOENT)`);
 * a syntax error names the file, line and column and a reason, but never quotes the line, which
 * may hold a secret.
 */
import { readFile } from "node:fs/promises";
import { type ErrorCode, parseDocument } from "yaml";
import { ConfigError } from "../errors";
import { displayPath, errorCode } from "./paths";

/** The config file and field that named a file. */
export interface Reference {
  file: string;
  field: string;
}

/**
 * The reason given for each of yaml's error codes. yaml's own messages are not used, not even
 * their first line: many quote the source ("Unexpected scalar token in YAML stream: \"…\"",
 * "Unsupported YAML version …", "Invalid escape sequence …", "Block scalar header includes
 * extra characters: …"), and the source of a config file may be a token.
 */
const REASONS: Record<ErrorCode, string> = {
  ALIAS_PROPS: "an alias (*name) cannot have a tag or an anchor",
  BAD_ALIAS: "an anchor (&name) or alias (*name) is malformed",
  BAD_DIRECTIVE: "a % directive is not understood",
  BAD_DQ_ESCAPE:
    "a double-quoted string holds an invalid \\ escape (write \\\\, or use single quotes)",
  BAD_INDENT: "bad indentation",
  BAD_PROP_ORDER: "a tag or anchor is out of place",
  BAD_SCALAR_START: "a plain value starts with a reserved character (@ or `): quote it",
  BLOCK_AS_IMPLICIT_KEY:
    'a mapping starts on the line of its key (a value that holds ": " must be quoted)',
  BLOCK_IN_FLOW: "a block collection inside [ ] or { }",
  DUPLICATE_KEY: "a key appears twice in the same mapping",
  IMPOSSIBLE: "the structure cannot be read",
  KEY_OVER_1024_CHARS: "a key is longer than 1024 characters",
  MISSING_CHAR:
    'a character is missing (a closing quote or bracket, a ":" after a key, a space after a comma)',
  MULTILINE_IMPLICIT_KEY:
    'a key runs over several lines (a missing ":", or a value indented too little)',
  MULTIPLE_ANCHORS: "a node has two anchors",
  MULTIPLE_DOCS: "the file holds more than one document (---)",
  MULTIPLE_TAGS: "a node has two tags",
  NON_STRING_KEY: "a key is not a string",
  RESOURCE_EXHAUSTION: "aliases expand too far",
  TAB_AS_INDENT: "a tab is used for indentation (use spaces)",
  TAG_RESOLVE_FAILED: "an unknown !tag",
  UNEXPECTED_TOKEN: "unexpected text (often a bad indentation, or a value that must be quoted)",
  BAD_COLLECTION_TYPE: "a collection does not fit its tag",
};

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
    const reason = REASONS[first.code] ?? "a syntax error";
    throw new ConfigError(`${displayPath(file)}: ${where}: invalid YAML: ${reason}`);
  }
  try {
    return doc.toJS();
  } catch (error) {
    // toJS refuses an alias without its anchor (its message names the alias) and an alias bomb;
    // the message is read to tell them apart, never shown.
    const message = error instanceof Error ? error.message : "";
    const reason = message.startsWith("Unresolved alias")
      ? "an alias (*name) names no anchor (&name) before it"
      : message.includes("Excessive alias count")
        ? "aliases expand too far"
        : "the document cannot be read as data";
    throw new ConfigError(`${displayPath(file)}: invalid YAML: ${reason}`);
  }
}
