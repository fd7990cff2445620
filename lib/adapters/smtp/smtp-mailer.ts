/**
 * E-mail through the lab's SMTP server (pharos.yaml `handover.email`), with nodemailer: the
 * hand-over to the booking user, and the operators' notices and failure reports. TLS is as configured and never quietly dropped: "tls" speaks TLS from the first
 * byte, "starttls" fails unless the upgrade happens, and the certificate is always verified
 * (against `ca` when given, the system's CAs otherwise).
 *
 * The message holds passwords, so nothing of it reaches an error or a log line: errors are built
 * here from reply codes and what went wrong, and quote the server only for replies given before
 * the message was sent (and never one that repeats the SMTP password). Logs carry the message id
 * and the number of recipients.
 *
 * Delivery is at least once. A failure a retry may fix (the server down, silent, answering 4xx,
 * the connection lost) is tried again here with backoff and a cap, then thrown as a
 * TransientError for the workflow's Retry. SMTP has no way to ask whether a message arrived, so
 * a message whose connection was lost after all of it was handed over — the server may have
 * taken it, its answer lost — is sent again too (OutcomeUnknownError while it is not): a
 * duplicate is possible, a loss is not. Every attempt of one send carries the same Message-ID,
 * by which mail clients and stores recognise a repeat. A 5xx is final and never repeated.
 */
import { randomUUID } from "node:crypto";
import nodemailer from "nodemailer";
import { z } from "zod";
import type { EmailConfig } from "../../config/types";
import {
  AuthError,
  ConfigError,
  LaasError,
  OutcomeUnknownError,
  TransientError,
} from "../../errors";
import type { Logger } from "../../log";
import type { Mailer, OutgoingMail } from "../../ports/mailer";
import { type RetryPolicy, retryTransient } from "../retry";

/**
 * Three attempts, a quarter and half a second apart (jittered), none started after 45 s: within
 * the HandOver step's 120 s even when each runs into the 30 s default timeout. Enough for a blip
 * (a 421 while the server restarts); the HandOver step retries on top, for an hour.
 */
export const DEFAULT_SMTP_RETRY: RetryPolicy = {
  retries: 2,
  minDelayMs: 250,
  maxDelayMs: 2_000,
  maxRetryMs: 45_000,
};

/** The mail server refused the message for good (a 5xx reply); sending it again will not help. */
export class MailRejectedError extends LaasError {
  override name = "MailRejected";
}

/**
 * The mail server refused some or all recipients for good. When it took the others, the message
 * went to them (`accepted`, `messageId`): sending it again would reach them twice.
 */
export class RecipientsRejectedError extends MailRejectedError {
  override name = "RecipientsRejected";
  constructor(
    message: string,
    readonly rejected: string[],
    readonly accepted: string[],
    readonly messageId: string | null,
  ) {
    super(message);
  }
}

/**
 * What nodemailer attaches to its errors (see its NodemailerError): `code` says which step
 * failed (ESOCKET, ETIMEDOUT, ETLS, EAUTH, EENVELOPE, EMESSAGE…), `originalCode` the system or
 * TLS error beneath it, `response` and `responseCode` the server's reply.
 */
interface SmtpFailure {
  code?: string;
  originalCode?: string;
  command?: string;
  response?: string;
  responseCode?: number;
  rejected?: string[];
  rejectedErrors?: SmtpFailure[];
  recipient?: string;
  timeoutType?: string;
  message?: string;
}

/** Certificate checks that failed: the lab's `ca` (or the server's certificate) is wrong. */
const CERTIFICATE_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "INVALID_CA",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

const TIMEOUTS: Record<string, string> = {
  CONNECT_TIMEOUT: "no connection",
  GREETING_TIMEOUT: "no greeting",
  UPGRADE_TIMEOUT: "no TLS upgrade",
  SOCKET_TIMEOUT: "no answer",
};

const singleAddress = z.email();

/**
 * What the SMTP client logs, read for one fact only: that the whole message was written to the
 * server after its DATA was accepted (nodemailer logs the byte counts of the message then, at
 * info level, whatever `debug` says). Nothing is printed or kept: entries may quote the server.
 */
function handOverWatch(): {
  logger: Record<string, (...args: unknown[]) => void>;
  sent: () => boolean;
} {
  let handedOver = false;
  const ignore = (): void => undefined;
  return {
    logger: {
      trace: ignore,
      debug: ignore,
      info: (entry: unknown) => {
        const fields = entry as { tnx?: unknown; outByteCount?: unknown } | null;
        if (fields?.tnx === "message" && typeof fields.outByteCount === "number") {
          handedOver = true;
        }
      },
      warn: ignore,
      error: ignore,
      fatal: ignore,
    },
    sent: () => handedOver,
  };
}

export class SmtpMailer implements Mailer {
  readonly #config: EmailConfig;
  readonly #logger: Logger;
  /** host:port, as errors name the server. */
  readonly #where: string;
  readonly #retry: RetryPolicy;

  constructor(config: EmailConfig, logger: Logger, options: { retry?: RetryPolicy } = {}) {
    this.#config = config;
    this.#logger = logger.child({ component: "smtp-mailer" });
    this.#where = `${config.host.includes(":") ? `[${config.host}]` : config.host}:${config.port}`;
    this.#retry = options.retry ?? DEFAULT_SMTP_RETRY;
  }

  async send(mail: OutgoingMail): Promise<{ messageId: string }> {
    const cc = mail.cc ?? [];
    this.#checkRecipients([...mail.to, ...cc]);
    const recipients = mail.to.length + cc.length;
    // One Message-ID for every attempt: a message sent twice (its first answer lost) is
    // recognisably the same message.
    const messageId = `<${randomUUID()}@${senderDomain(this.#config.from)}>`;
    return retryTransient(() => this.#attempt(mail, cc, recipients, messageId), this.#retry, {
      logger: this.#logger,
      what: `mail ${messageId} to ${recipients} recipient(s) via ${this.#where}`,
    });
  }

  async #attempt(
    mail: OutgoingMail,
    cc: string[],
    recipients: number,
    messageId: string,
  ): Promise<{ messageId: string }> {
    // One transport per attempt: a hand-over is one message now and then, and the password is
    // only revealed for as long as it is needed.
    const watch = handOverWatch();
    const transport = this.#transport(watch.logger);
    try {
      const info = await transport.sendMail({
        from: this.#config.from,
        to: mail.to,
        cc,
        subject: mail.subject,
        text: mail.text,
        ...(mail.html !== undefined ? { html: mail.html } : {}),
        messageId,
        // RFC 3834: no vacation replies or auto-responders back to the lab.
        headers: { "Auto-Submitted": "auto-generated" },
        disableFileAccess: true,
        disableUrlAccess: true,
      });
      const rejected = info.rejected.map(String);
      if (rejected.length > 0) {
        throw this.#partlyRejected(
          rejected,
          info.accepted.map(String),
          info.messageId,
          (info as { rejectedErrors?: SmtpFailure[] }).rejectedErrors ?? [],
        );
      }
      this.#logger.info({ messageId: info.messageId, recipients }, "mail sent");
      return { messageId: info.messageId };
    } catch (error) {
      let failure = error instanceof LaasError ? error : this.#classify(error as SmtpFailure);
      const answered = (error as SmtpFailure | null)?.responseCode !== undefined;
      if (watch.sent() && !answered && failure instanceof TransientError) {
        // The whole message went to the server, and no verdict came back.
        failure = new OutcomeUnknownError(
          `${failure.message}, after the whole message was sent: the server may have taken it ` +
            "(it is sent again: delivery is at least once)",
        );
      }
      this.#logger.warn(
        {
          messageId,
          recipients,
          error: failure.name,
          mayHaveArrived: failure instanceof OutcomeUnknownError,
        },
        "mail not sent",
      );
      throw failure;
    } finally {
      transport.close();
    }
  }

  #transport(logger: Record<string, (...args: unknown[]) => void>) {
    const config = this.#config;
    const timeoutMs = config.timeoutSeconds * 1000;
    const auth =
      config.user !== null && config.pass !== null
        ? { user: config.user, pass: config.pass.reveal() }
        : undefined;
    return nodemailer.createTransport({
      host: config.host,
      port: config.port,
      secure: config.security === "tls",
      requireTLS: config.security === "starttls",
      ignoreTLS: config.security === "none",
      tls: {
        ...(config.caPem !== null ? { ca: config.caPem } : {}),
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
      },
      ...(auth ? { auth } : {}),
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      dnsTimeout: timeoutMs,
      // Reads one fact and prints nothing: nodemailer's own logging would print the SMTP
      // dialogue, message included.
      logger,
      debug: false,
      transactionLog: false,
    });
  }

  /**
   * Every recipient must be one plain address: nodemailer reads "a@x, b@y" as two, and an
   * address from the dashboard must not bring others along.
   */
  #checkRecipients(recipients: string[]): void {
    if (recipients.length === 0) throw new ConfigError("mail has no recipient");
    const bad = recipients.filter((address) => !singleAddress.safeParse(address).success);
    if (bad.length > 0) {
      throw new RecipientsRejectedError(
        `mail not sent: not one e-mail address each: ${bad.map((b) => JSON.stringify(b.slice(0, 100))).join(", ")}`,
        bad,
        [],
        null,
      );
    }
  }

  #partlyRejected(
    rejected: string[],
    accepted: string[],
    messageId: string,
    errors: SmtpFailure[],
  ): RecipientsRejectedError {
    const why = rejected.map((address) => {
      const error = errors.find((e) => e.recipient === address);
      const said = error ? this.#serverSaid(error) : null;
      return said ? `${address} (${said})` : address;
    });
    return new RecipientsRejectedError(
      `mail server ${this.#where} refused ${why.join(", ")}; the message went to ${accepted.join(", ")} only`,
      rejected,
      accepted,
      messageId,
    );
  }

  #classify(error: SmtpFailure): LaasError {
    const where = this.#where;
    const code = error.code ?? "unknown";
    const reply = error.responseCode;
    const said = this.#serverSaid(error);
    const quoted = said ? ` (${said})` : "";

    if (error.originalCode && CERTIFICATE_CODES.has(error.originalCode)) {
      const fix =
        this.#config.caPem === null
          ? "set handover.email.ca to the CA that signed it"
          : "check handover.email.ca and the server's name";
      return new ConfigError(
        `mail server ${where}: its certificate is not accepted (${error.originalCode}: ${oneLine(error.message ?? "")}); ${fix}`,
      );
    }
    if (error.originalCode === "ERR_SSL_WRONG_VERSION_NUMBER") {
      return new ConfigError(
        `mail server ${where} does not speak TLS from the first byte; check handover.email.security (${this.#config.security}) and port`,
      );
    }
    if (code === "ETLS") {
      if (reply !== undefined && reply >= 500) {
        return new ConfigError(
          `mail server ${where} does not offer STARTTLS${quoted}; check handover.email.security (${this.#config.security})`,
        );
      }
      return new TransientError(`mail server ${where}: the TLS upgrade failed${quoted}`);
    }
    if (code === "EAUTH") {
      if (reply !== undefined && reply >= 400 && reply < 500) {
        return new TransientError(`mail server ${where} could not check the login now${quoted}`);
      }
      if (reply !== undefined) {
        return new AuthError(
          `mail server ${where} refused the login of ${JSON.stringify(this.#config.user)}${quoted}`,
        );
      }
      return new ConfigError(`mail server ${where}: cannot log in: ${code}`);
    }
    if (error.command === "CONN" && reply !== undefined && reply >= 500) {
      // A 5xx greeting (RFC 5321 3.1): this server serves no mail to this client at all.
      return new ConfigError(
        `mail server ${where} refuses to serve LaaS${quoted}; check handover.email.host and port, and that the server accepts mail from this machine`,
      );
    }
    if (error.command === "MAIL FROM" && reply !== undefined) {
      // 530 is both "log in first" (RFC 4954) and "STARTTLS first" (RFC 3207).
      if (reply === 530 && /tls/i.test(error.response ?? "")) {
        return new ConfigError(
          `mail server ${where} wants TLS first${quoted}; check handover.email.security (${this.#config.security})`,
        );
      }
      if (reply === 530) {
        return new AuthError(
          `mail server ${where} wants a login${quoted}; set handover.email.user and pass`,
        );
      }
      if (reply >= 500) {
        return new ConfigError(
          `mail server ${where} refused the sender ${JSON.stringify(this.#config.from)}${quoted}`,
        );
      }
    }
    if (code === "EENVELOPE" && error.command === "RCPT TO" && error.rejected) {
      const deferred = reply !== undefined && reply < 500;
      const why = error.rejected.map((address) => {
        const own = error.rejectedErrors?.find((e) => e.recipient === address);
        const text = own ? this.#serverSaid(own) : null;
        return text ? `${address} (${text})` : address;
      });
      if (deferred) {
        return new TransientError(
          `mail server ${where} deferred every recipient: ${why.join(", ")}`,
        );
      }
      return new RecipientsRejectedError(
        `mail server ${where} refused every recipient: ${why.join(", ")}`,
        error.rejected,
        [],
        null,
      );
    }
    if (reply !== undefined && reply >= 400 && reply < 500) {
      return new TransientError(`mail server ${where} deferred the message${quoted}`);
    }
    if (reply !== undefined && reply >= 500) {
      return new MailRejectedError(`mail server ${where} refused the message${quoted}`);
    }
    if (code === "ETIMEDOUT") {
      const what = (error.timeoutType && TIMEOUTS[error.timeoutType]) ?? "no answer";
      return new TransientError(
        `mail server ${where}: ${what} within ${this.#config.timeoutSeconds} s`,
      );
    }
    const cause = error.originalCode ?? code;
    return new TransientError(`mail server ${where} unreachable (${cause})`);
  }

  /**
   * The server's reply, fit for an error: only replies to commands sent before the message
   * (greeting, EHLO, STARTTLS, AUTH, MAIL FROM, RCPT TO), as a reply after DATA may quote the
   * message; one line, cut short, and dropped if it repeats the SMTP password.
   */
  #serverSaid(error: SmtpFailure): string | null {
    const response = error.response;
    if (!response) return error.responseCode !== undefined ? String(error.responseCode) : null;
    const codes = /^(\d{3})(?:[ -](\d\.\d{1,3}\.\d{1,3}))?/.exec(response);
    const codesOnly = codes ? [codes[1], codes[2]].filter(Boolean).join(" ") : null;
    if (error.command === "DATA" || error.code === "EMESSAGE") return codesOnly;
    const line = oneLine(response).slice(0, 200);
    const pass = this.#config.pass?.reveal();
    if (pass && (line.includes(pass) || line.includes(Buffer.from(pass).toString("base64")))) {
      return codesOnly;
    }
    return line;
  }
}

function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is dropped
  return text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
}

/** The domain of the configured sender, for Message-IDs (nodemailer makes its own the same way). */
function senderDomain(from: string): string {
  const domain = /@([^\s<>@"]+)>?\s*$/.exec(from)?.[1];
  return domain && /^[A-Za-z0-9.-]+$/.test(domain) ? domain : "laas.invalid";
}
