/**
 * What the logger does to every value before it is written (lib/log.ts): a Secret prints as
 * "[secret]" and a field whose name says it holds a credential prints as "[redacted]", at any
 * depth — in nested objects, in arrays, in errors and in a child logger's bindings. pino's own
 * `redact` matches fixed paths only (`*.password` is one level deep), which a credential nested
 * one level further, or inside an array or an error, slips past.
 *
 * The walk is bounded (MAX_DEPTH; deeper values are dropped, not printed) and cycle-safe, and it
 * copies: the caller's objects are never changed.
 */
import { pino } from "pino";
import { Secret } from "./secret";

export const SECRET_TEXT = "[secret]";
export const CENSOR_TEXT = "[redacted]";
export const TOO_DEEP_TEXT = "[too deep]";
export const CIRCULAR_TEXT = "[circular]";

/** Levels of nesting printed; what lies deeper is replaced by TOO_DEEP_TEXT. */
export const MAX_DEPTH = 10;

/**
 * Field names (compared lower-case, without "_" and "-") whose value is never printed:
 * `api_key`, `apiKey` and `API-KEY` are one name. `headers` hides every header.
 */
const CENSORED_NAMES = new Set([
  "password",
  "passwd",
  "pass",
  "token",
  "apikey",
  "userkey",
  "secret",
  "authorization",
  "sealedcredentials",
  "headers",
]);

/**
 * Endings that mark a credential whatever comes before (`vpnPassword`, `admin_password`,
 * `taskToken`, `clientSecret`, `sealedCredentials`, `secretAccessKey`, `privateKey`,
 * `sealingKey`). Public keys and fingerprints (`hostKey`, `sshKey`) are not among them.
 */
const CENSORED_ENDINGS = [
  "password",
  "token",
  "secret",
  "credentials",
  "accesskey",
  "privatekey",
  "sealingkey",
];

function normalised(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, "");
}

/** Whether a field of this name is printed as "[redacted]". */
export function isCensoredField(name: string): boolean {
  const key = normalised(name);
  return CENSORED_NAMES.has(key) || CENSORED_ENDINGS.some((ending) => key.endsWith(ending));
}

/**
 * An object printed field by field: a plain object, or an instance JSON would print by its own
 * fields (no toJSON of its own). Dates, Buffers, URLs and the like print as JSON prints them.
 */
function printsByFields(value: object): boolean {
  return typeof (value as { toJSON?: unknown }).toJSON !== "function";
}

function walk(value: unknown, depth: number, ancestors: Set<object>): unknown {
  if (value instanceof Secret) return SECRET_TEXT;
  if (value === null || typeof value !== "object") return value;
  if (ancestors.has(value)) return CIRCULAR_TEXT;
  if (depth >= MAX_DEPTH) return TOO_DEEP_TEXT;
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1, ancestors));
    // pino's error serializer (type, message and stack with their causes, own fields), then
    // its fields walked like any others'.
    const source: object = value instanceof Error ? pino.stdSerializers.err(value) : value;
    if (source === value && !printsByFields(value)) return value;
    const copy: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(source)) {
      copy[key] =
        isCensoredField(key) && field !== null && field !== undefined
          ? CENSOR_TEXT
          : walk(field, depth + 1, ancestors);
    }
    return copy;
  } finally {
    ancestors.delete(value);
  }
}

/** A copy of `value` fit for a log line (see the top of this file). */
export function redactValue(value: unknown): unknown {
  return walk(value, 0, new Set());
}

/** The log method's object, redacted (pino `formatters.log`). */
export function redactLogObject(object: Record<string, unknown>): Record<string, unknown> {
  const redacted = redactValue(object);
  return redacted !== null && typeof redacted === "object" && !Array.isArray(redacted)
    ? (redacted as Record<string, unknown>)
    : {};
}
