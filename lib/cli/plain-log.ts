/**
 * A log line for a person: the JSON line the log file keeps (lib/log.ts), as one line of text —
 * the time in this machine's zone, named; the level; the message; then the fields that say what it
 * is about (`booking=42 host=fog-machine-4 progress="imaging: …"`). Made with pino-pretty's
 * formatter, colours off. Control characters (a remote command's escapes) are dropped and line
 * breaks shown as ` | `, so one event is always one line and never an empty one.
 */
import { prettyFactory } from "pino-pretty";
import { zonedTime } from "../time";

/** Fields a person does not need on each line (the main log keeps them). */
const HIDDEN = new Set(["level", "time", "msg", "service", "pid", "hostname"]);
/** Shown first, in this order, under these names. */
const FIRST: [field: string, shown: string][] = [
  ["bookingId", "booking"],
  ["host", "host"],
];

// Every C0 and C1 control character but the tab: escape sequences and bells must not reach the
// terminal as they are.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// An escape sequence (colours, cursor moves) goes whole, not only its ESC.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const ESCAPE_SEQUENCE = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-_]/g;
const LINE_BREAK = /\r?\n|\r/g;

function oneLine(text: string): string {
  return text.replace(LINE_BREAK, " | ").replace(ESCAPE_SEQUENCE, "").replace(CONTROL, "");
}

function valueText(value: unknown): string {
  if (typeof value === "string") {
    const text = oneLine(value);
    return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
  }
  if (value !== null && typeof value === "object") {
    // An error as the log keeps it (type, message, stack): its message is what a line shows.
    const message = (value as { message?: unknown }).message;
    if (typeof message === "string" && "stack" in value) return valueText(message);
    return oneLine(JSON.stringify(value));
  }
  return String(value);
}

function messageOf(log: Record<string, unknown>, messageKey: string): string {
  const message = log[messageKey];
  const parts = [typeof message === "string" ? oneLine(message) : ""];
  for (const [field, shown] of FIRST) {
    if (log[field] !== undefined) parts.push(`${shown}=${valueText(log[field])}`);
  }
  for (const [field, value] of Object.entries(log)) {
    if (HIDDEN.has(field) || FIRST.some(([first]) => first === field) || value === undefined) {
      continue;
    }
    parts.push(`${field}=${valueText(value)}`);
  }
  return parts.filter((part) => part !== "").join(" ");
}

const pretty = prettyFactory({
  colorize: false,
  translateTime: false,
  hideObject: true,
  ignore: "pid,hostname",
  customPrettifiers: {
    time: (time) => {
      const at = new Date(typeof time === "number" ? time : String(time));
      return Number.isNaN(at.getTime()) ? String(time) : zonedTime(at, { date: true });
    },
  },
  messageFormat: messageOf,
});

/** One serialized log line (JSON) as a line of text, without its newline. */
export function plainLogLine(jsonLine: string): string {
  return oneLine(pretty(jsonLine).replace(/\n+$/, ""));
}
