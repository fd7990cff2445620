/**
 * A real SMTP server for tests (smtp-server, the protocol side of Nodemailer's project) on
 * 127.0.0.1 and a free port: plain, STARTTLS required, or TLS from the first byte, with optional
 * AUTH PLAIN/LOGIN for one fixed user. It can turn away the next connections with a 4xx or 5xx
 * greeting, and the next messages with a 4xx or 5xx at MAIL FROM, RCPT TO or the end of DATA,
 * and keeps every message it accepts, parsed by mailparser.
 * Certificates are throwaway self-signed ones made by `openssl`, so the trust checks under test
 * run against what OpenSSL made, not against anything the code under test produced.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AddressObject, simpleParser } from "mailparser";
import { SMTPServer, type SMTPServerSession } from "smtp-server";
import { describeRun, runCommand } from "./subprocess";

export type SmtpSecurity = "plain" | "starttls" | "tls";

export interface Certificate {
  /** PEM; self-signed, so it is its own CA. */
  cert: string;
  key: string;
}

export interface SmtpServerOptions {
  security: SmtpSecurity;
  /** When given, AUTH PLAIN and LOGIN are offered and required, for this user only. */
  auth?: { user: string; pass: string };
  /** Certificate the server presents; default one for 127.0.0.1 and localhost. */
  certificate?: Certificate;
}

export interface CapturedMail {
  /** The envelope, as MAIL FROM and RCPT TO gave it. */
  envelope: { from: string; to: string[] };
  /** Header addresses. */
  from: string[];
  to: string[];
  cc: string[];
  subject: string;
  text: string;
  html: string | null;
  /** The message as received, headers and all. */
  raw: string;
  headers: Map<string, unknown>;
  /** Whether the session was encrypted when the message came. */
  secure: boolean;
  /** The user the session logged in as, if it did. */
  user: string | null;
}

export interface Rejection {
  /** Reply code, 4xx (try later) or 5xx (refused). */
  code: number;
  /**
   * As the greeting (the connection turned away: met by the next connection), at MAIL FROM (the
   * sender refused), at RCPT TO (a recipient refused) or at the end of DATA (the message
   * refused).
   */
  stage: "connect" | "mail" | "rcpt" | "data";
  /** At RCPT TO: only these recipients are refused (default: all). */
  only?: string[];
  /** Reply text after the code (default a plain one for the stage). */
  message?: string;
}

export interface TestSmtpServer {
  readonly host: string;
  readonly port: number;
  /** PEM of the certificate presented (trust it as a CA to accept the server). */
  readonly caPem: string;
  readonly messages: readonly CapturedMail[];
  /** Login attempts as username and whether they succeeded (passwords are not kept). */
  readonly logins: ReadonlyArray<{ user: string; ok: boolean }>;
  /**
   * The next `count` messages (transactions) meet `rejection` — the next `count` connections,
   * for a greeting. Rejections are met in the order they were asked for.
   */
  rejectNext(count: number, rejection: Rejection): void;
  /** Connections the server accepted so far. */
  readonly connections: number;
  /** Drops the rejections not met yet: the next messages are accepted. */
  acceptAll(): void;
  /** How many transactions met a rejection so far. */
  readonly rejected: number;
  close(): Promise<void>;
}

let defaultCertificate: Promise<Certificate> | null = null;

/** A self-signed certificate (EC P-256, one day) for the given names and addresses. */
export async function makeCertificate(
  subjectAltNames = ["IP:127.0.0.1", "DNS:localhost"],
): Promise<Certificate> {
  const dir = await mkdtemp(join(tmpdir(), "laas-smtp-cert-"));
  try {
    const result = await runCommand(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=laas test mail server",
        "-addext",
        `subjectAltName=${subjectAltNames.join(",")}`,
        "-keyout",
        "key.pem",
        "-out",
        "cert.pem",
      ],
      { cwd: dir, timeoutMs: 30_000 },
    );
    if (result.code !== 0) throw new Error(`openssl req failed\n${describeRun(result)}`);
    return {
      cert: await readFile(join(dir, "cert.pem"), "utf8"),
      key: await readFile(join(dir, "key.pem"), "utf8"),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  const list = field === undefined ? [] : Array.isArray(field) ? field : [field];
  return list.flatMap((object) => object.value.map((entry) => entry.address ?? ""));
}

export async function startSmtpServer(options: SmtpServerOptions): Promise<TestSmtpServer> {
  defaultCertificate ??= makeCertificate();
  const certificate = options.certificate ?? (await defaultCertificate);
  const messages: CapturedMail[] = [];
  const logins: Array<{ user: string; ok: boolean }> = [];
  const pending: Rejection[] = [];
  let rejected = 0;
  let connections = 0;
  // The rejection a session's current transaction meets, chosen at its MAIL FROM.
  const current = new Map<string, Rejection | null>();
  const auth = options.auth;

  const server = new SMTPServer({
    secure: options.security === "tls",
    key: certificate.key,
    cert: certificate.cert,
    name: "mail.laas.test",
    disabledCommands: [
      ...(options.security === "plain" ? ["STARTTLS"] : []),
      ...(auth ? [] : ["AUTH"]),
    ],
    authMethods: ["PLAIN", "LOGIN"],
    // A plain server with AUTH is what some lab relays are; the client decides whether to use it.
    allowInsecureAuth: options.security === "plain",
    disableReverseLookup: true,
    hideENHANCEDSTATUSCODES: false,
    logger: false,
    closeTimeout: 500,
    socketTimeout: 10_000,
    onConnect(_session, callback) {
      connections += 1;
      if (pending[0]?.stage === "connect") {
        const rejection = pending.shift() as Rejection;
        rejected += 1;
        const text =
          rejection.message ??
          (rejection.code >= 500 ? "No SMTP service here" : "Service not available, try later");
        callback(smtpError(rejection.code, text));
        return;
      }
      callback();
    },
    onAuth(login, _session, callback) {
      const ok = auth !== undefined && login.username === auth.user && login.password === auth.pass;
      logins.push({ user: login.username ?? "", ok });
      if (!ok) {
        callback(smtpError(535, "5.7.8 Authentication credentials invalid"));
        return;
      }
      callback(null, { user: login.username });
    },
    onMailFrom(_address, session, callback) {
      if (options.security === "starttls" && !session.secure) {
        callback(smtpError(530, "5.7.0 Must issue a STARTTLS command first"));
        return;
      }
      const rejection = pending[0]?.stage === "connect" ? null : (pending.shift() ?? null);
      if (rejection) rejected += 1;
      current.set(session.id, rejection);
      if (rejection?.stage === "mail") {
        const text =
          rejection.message ??
          (rejection.code >= 500 ? "Sender refused" : "Sender deferred, try later");
        callback(smtpError(rejection.code, text));
        return;
      }
      callback();
    },
    onRcptTo(address, session, callback) {
      const rejection = current.get(session.id);
      if (
        rejection?.stage === "rcpt" &&
        (rejection.only === undefined || rejection.only.includes(address.address))
      ) {
        const text =
          rejection.message ??
          (rejection.code >= 500 ? "Mailbox unavailable" : "Mailbox busy, try later");
        callback(smtpError(rejection.code, text));
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const rejection = current.get(session.id);
        if (rejection?.stage === "data") {
          const text =
            rejection.message ?? (rejection.code >= 500 ? "Message refused" : "Try again later");
          callback(smtpError(rejection.code, text));
          return;
        }
        const raw = Buffer.concat(chunks);
        capture(raw, session)
          .then((mail) => {
            messages.push(mail);
            callback();
          })
          .catch((error: unknown) => callback(error as Error));
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  // Client errors (a failed handshake, a dropped connection) are part of several tests.
  server.on("error", () => undefined);
  const bound = server.server.address();
  const port = typeof bound === "object" && bound !== null ? bound.port : 0;

  return {
    host: "127.0.0.1",
    port,
    caPem: certificate.cert,
    messages,
    logins,
    rejectNext(count, rejection) {
      for (let i = 0; i < count; i++) pending.push(rejection);
    },
    acceptAll() {
      pending.length = 0;
    },
    get rejected() {
      return rejected;
    },
    get connections() {
      return connections;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function capture(raw: Buffer, session: SMTPServerSession): Promise<CapturedMail> {
  const parsed = await simpleParser(raw);
  const from = session.envelope.mailFrom;
  return {
    envelope: {
      from: from === false ? "" : from.address,
      to: session.envelope.rcptTo.map((r) => r.address),
    },
    from: addresses(parsed.from),
    to: addresses(parsed.to),
    cc: addresses(parsed.cc),
    subject: parsed.subject ?? "",
    text: parsed.text ?? "",
    html: typeof parsed.html === "string" ? parsed.html : null,
    raw: raw.toString("utf8"),
    headers: parsed.headers,
    secure: session.secure,
    user: typeof session.user === "string" ? session.user : null,
  };
}
