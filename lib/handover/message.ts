import nunjucks from "nunjucks";
import { ConfigError, errorMessage, LaasError } from "../errors";
import { templatesDir } from "../templates";

export interface HandoverDetails {
  bookingId: string;
  userName: string | null;
  hostName: string;
  hostAddress: string;
  vpnServer: string | null;
  vpnUser: string | null;
  vpnPassword: string | null;
  /**
   * The booking whose hand-over carried the VPN password, when the account is the user's
   * already (made for an earlier booking and unchanged): vpnPassword is then null.
   */
  vpnPasswordFrom: string | null;
  rootPassword: string | null;
  /** The account the root password is for ("root"). */
  rootUser: string;
  installer: string | null;
  scenario: string | null;
  /** Booking end, ISO-8601. */
  end: string;
  purpose: string;
  sshKey: { installed: true; fingerprint: string } | { installed: false; reason: string } | null;
  dashboardUrl: string | null;
}

export interface RenderedMessage {
  subject: string;
  text: string;
  html: string;
}

const TEXT_TEMPLATE = "handover.txt.njk";
const HTML_TEMPLATE = "handover.html.njk";

/**
 * Everything Unicode calls a control character (C0, DEL, C1) but tab and line feed, and the
 * bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is stripped
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** A value that may span lines (the purpose): line breaks kept, as "\n". */
function multiLine(value: string): string {
  return value.replace(/\r\n?/g, "\n").replace(UNPRINTABLE, "");
}

/** A value shown on one line: line breaks and tabs become single spaces. */
function oneLine(value: string): string {
  return multiLine(value)
    .replace(/[\t\n]+/g, " ")
    .trim();
}

function optional(value: string | null): string | null {
  if (value === null) return null;
  const text = oneLine(value);
  return text === "" ? null : text;
}

const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** "Thursday 2017-06-01 18:00 UTC": unambiguous whatever the reader's locale. */
function utcTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    throw new LaasError(`hand-over: booking end ${JSON.stringify(iso)} is not a time`);
  }
  const text = date.toISOString(); // 2017-06-01T18:00:00.000Z
  return `${WEEKDAYS[date.getUTCDay()]} ${text.slice(0, 10)} ${text.slice(11, 16)} UTC`;
}

/** Only http(s) links are links; anything else (javascript:, data:) is not shown at all. */
function webLink(url: string | null): string | null {
  if (url === null) return null;
  try {
    const parsed = new URL(oneLine(url));
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** What the templates see (documented at the top of each template): cleaned, nulls decided. */
function messageContext(details: HandoverDetails): Record<string, unknown> {
  const hostAddress = oneLine(details.hostAddress);
  const vpnUser = optional(details.vpnUser);
  const rootPassword = optional(details.rootPassword);
  const purpose = multiLine(details.purpose).replace(/^\n+|\s+$/g, "");
  const key = details.sshKey;
  return {
    bookingId: oneLine(details.bookingId),
    userName: optional(details.userName),
    hostName: oneLine(details.hostName),
    hostAddress,
    vpn:
      vpnUser === null
        ? null
        : {
            server: optional(details.vpnServer),
            user: vpnUser,
            password: optional(details.vpnPassword),
            passwordFrom: optional(details.vpnPasswordFrom),
          },
    root: {
      user: oneLine(details.rootUser),
      login: `${oneLine(details.rootUser)}@${hostAddress}`,
      password: rootPassword,
    },
    sshKey:
      key === null
        ? null
        : key.installed
          ? { installed: true, fingerprint: oneLine(key.fingerprint) }
          : { installed: false, reason: oneLine(key.reason) },
    installer: optional(details.installer) ?? "none",
    scenario: optional(details.scenario) ?? "none",
    end: utcTime(details.end),
    purpose,
    purposeLines: purpose === "" ? [] : purpose.split("\n"),
    dashboardUrl: webLink(details.dashboardUrl),
  };
}

export function renderHandover(details: HandoverDetails): RenderedMessage {
  const context = messageContext(details);
  return {
    subject: `Your LaaS pod ${context.hostName} is ready (booking ${context.bookingId})`,
    text: render(TEXT_TEMPLATE, false, context),
    html: render(HTML_TEMPLATE, true, context),
  };
}

/** templates/messages/ (see lib/templates.ts). */
export function messageTemplatesDir(): string {
  return templatesDir("messages");
}

/**
 * One environment per kind of output, compiled once per process (as lib/pod/render.ts does).
 * throwOnUndefined turns a misspelt field, or a null printed without its `if`, into an error
 * rather than a message with a hole in it.
 */
const environments = new Map<boolean, nunjucks.Environment>();

function environmentFor(autoescape: boolean): nunjucks.Environment {
  let environment = environments.get(autoescape);
  if (!environment) {
    environment = new nunjucks.Environment(new nunjucks.FileSystemLoader(messageTemplatesDir()), {
      autoescape,
      throwOnUndefined: true,
      trimBlocks: true,
      lstripBlocks: true,
    });
    environments.set(autoescape, environment);
  }
  return environment;
}

function render(template: string, autoescape: boolean, context: Record<string, unknown>): string {
  try {
    return environmentFor(autoescape).render(template, context);
  } catch (error) {
    // nunjucks' errors say where in the template and what went wrong, not the values printed
    // (which hold passwords).
    throw new ConfigError(`templates/messages/${template}: cannot render: ${errorMessage(error)}`);
  }
}

/** What the operators are told of a failed booking: everything, the whole error included. */
export interface FailureReportDetails {
  bookingId: string;
  hostName: string;
  phase: "provision" | "release";
  /** The workflow state that failed ("AwaitInstaller", "CreateVpnUser or SetHostAccess"…). */
  step: string;
  /** The booking user as the dashboard refers to them, or null. */
  user: string | null;
  installer: string | null;
  scenario: string | null;
  /** What became of the host: "free", "quarantined" or "unchanged". */
  host: string;
  /** The dashboard note's text, or null when the booking gets no note. */
  note: string | null;
  /** The error as recorded on the booking (booking.failure), lines and all. */
  error: string;
  /** When the failure was recorded, ISO-8601. */
  at: string;
}

export interface RenderedText {
  subject: string;
  text: string;
}

const FAILURE_TEMPLATE = "failure-report.txt.njk";

export function renderFailureReport(details: FailureReportDetails): RenderedText {
  const error = multiLine(details.error).replace(/^\n+|\s+$/g, "");
  const context = {
    bookingId: oneLine(details.bookingId),
    hostName: oneLine(details.hostName),
    phase: details.phase,
    step: oneLine(details.step),
    user: optional(details.user),
    installer: optional(details.installer) ?? "none",
    scenario: optional(details.scenario) ?? "none",
    host: oneLine(details.host),
    note: optional(details.note),
    at: utcTime(details.at),
    errorLines: error === "" ? ["(no error text was recorded)"] : error.split("\n"),
  };
  return {
    subject: `LaaS: booking ${context.bookingId} ${context.phase} failed on ${context.hostName} (${context.step})`,
    text: render(FAILURE_TEMPLATE, false, context),
  };
}

/** What the operators are told of a hand-over: that it went, or why not; never a credential. */
export interface HandoverNoticeDetails {
  bookingId: string;
  hostName: string;
  /** The booking user as the dashboard names them (name, or reference), or null. */
  user: string | null;
  /** The addresses the hand-over went to; empty when it was not delivered. */
  recipients: string[];
  delivered: boolean;
  /** Why it was not delivered, or null. */
  problem: string | null;
  /** The command that sends it once the problem is fixed, or null. */
  command: string | null;
  /** ISO-8601. */
  at: string;
}

const NOTICE_TEMPLATE = "handover-notice.txt.njk";

export function renderHandoverNotice(details: HandoverNoticeDetails): RenderedText {
  const context = {
    bookingId: oneLine(details.bookingId),
    hostName: oneLine(details.hostName),
    user: optional(details.user),
    recipients: details.recipients.map(oneLine),
    delivered: details.delivered,
    problem: optional(details.problem),
    command: optional(details.command),
    at: utcTime(details.at),
  };
  const what = details.delivered ? "sent" : "NOT delivered";
  return {
    subject: `LaaS: hand-over of booking ${context.bookingId} (${context.hostName}) ${what}`,
    text: render(NOTICE_TEMPLATE, false, context),
  };
}

/** A short notice to the operators: an event, its reason and the commands that clear it. */
export interface OperatorNoticeDetails {
  subject: string;
  /** One sentence saying what happened. */
  summary: string;
  /** Label and value pairs shown as a table (values are single lines). */
  fields: [string, string][];
  /** Why (the recorded reason; never holds secrets). */
  reason: string;
  /** The commands that look closer or clear it, one per line. */
  commands: string[];
}

const OPERATOR_NOTICE_TEMPLATE = "operator-notice.txt.njk";

export function renderOperatorNotice(details: OperatorNoticeDetails): RenderedText {
  const width = Math.max(...details.fields.map(([label]) => label.length)) + 2;
  const context = {
    summary: oneLine(details.summary),
    rows: details.fields.map(
      ([label, value]) => `${`${oneLine(label)}:`.padEnd(width)}${oneLine(value)}`,
    ),
    reasonLines: multiLine(details.reason).trim().split("\n"),
    commands: details.commands.map(oneLine),
  };
  return {
    subject: oneLine(details.subject),
    text: render(OPERATOR_NOTICE_TEMPLATE, false, context),
  };
}

/** What the booking user is told before their booking ends (no secret in it). */
export interface EndNoticeDetails {
  bookingId: string;
  userName: string | null;
  hostName: string;
  /** Booking end, ISO-8601. */
  end: string;
  /** When the notice is sent, ISO-8601: how long is left is counted from it. */
  at: string;
  /** Whether a VPN account was made for the booking (it goes at the end). */
  vpn: boolean;
  dashboardUrl: string | null;
}

const END_NOTICE_TEXT = "end-notice.txt.njk";
const END_NOTICE_HTML = "end-notice.html.njk";

/** "about 47 hours", "about 30 minutes": what is left, rounded down, never below a minute. */
function timeLeft(fromIso: string, toIso: string): string {
  const minutes = Math.max(1, Math.floor((Date.parse(toIso) - Date.parse(fromIso)) / 60_000));
  if (minutes < 120) return `about ${minutes} minute${minutes === 1 ? "" : "s"}`;
  return `about ${Math.floor(minutes / 60)} hours`;
}

export function renderEndNotice(details: EndNoticeDetails): RenderedMessage {
  const context = {
    bookingId: oneLine(details.bookingId),
    userName: optional(details.userName),
    hostName: oneLine(details.hostName),
    end: utcTime(details.end),
    left: timeLeft(details.at, details.end),
    vpn: details.vpn,
    dashboardUrl: webLink(details.dashboardUrl),
  };
  return {
    subject: `Your LaaS booking ${context.bookingId} on ${context.hostName} ends ${context.end}`,
    text: render(END_NOTICE_TEXT, false, context),
    html: render(END_NOTICE_HTML, true, context),
  };
}
