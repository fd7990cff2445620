/**
 * Path rules of the config files: a relative path resolves against the directory of the file
 * that holds it (never the working directory), and `~/` is the home directory.
 */
import { homedir } from "node:os";
import { isAbsolute, relative, resolve } from "node:path";

export function resolveConfigPath(baseDir: string, value: string): string {
  if (value === "~") return homedir();
  if (value.startsWith("~/")) return resolve(homedir(), value.slice(2));
  return resolve(baseDir, value);
}

/**
 * How a file is named in messages: relative to the working directory when it lies below it
 * (`conf/fuel.yaml`), absolute otherwise.
 */
export function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel === "" || rel.startsWith("..") || isAbsolute(rel) ? file : rel;
}

/** The errno code of a failed file operation (ENOENT, EACCES, EISDIR…), for messages. */
export function errorCode(error: unknown): string {
  if (error && typeof error === "object" && "code" in error && typeof error.code === "string") {
    return error.code;
  }
  return error instanceof Error ? error.message : String(error);
}
