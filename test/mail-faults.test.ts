/**
 * The SMTP mailer when the mail server or the network fails, against a real SMTP server
 * (sim/smtp.ts) that answers 421/451 and then 250, or 5xx, and a TCP fault proxy that cuts
 * the connection at a chosen point of the dialogue. Each test pins one classification or one
 * retry: 4xx and network failures are tried again, 5xx never; a message whose answer was lost
 * after all of it was sent is sent again — at least once, the copies sharing one Message-ID.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NO_RETRY, type RetryPolicy } from "../lib/adapters/retry";
import {
  MailRejectedError,
  RecipientsRejectedError,
  SmtpMailer,
} from "../lib/adapters/smtp/smtp-mailer";
import type { EmailConfig } from "../lib/config/types";
import { ConfigError, OutcomeUnknownError, TransientError } from "../lib/errors";
import type { OutgoingMail } from "../lib/ports/mailer";
import { startSmtpServer, type TestSmtpServer } from "../sim/smtp";
import { capturingLogger } from "./helpers/logs";
import { type FaultProxy, startFaultProxy } from "./helpers/tcp-fault-proxy";

const FAST_RETRY: RetryPolicy = { retries: 2, minDelayMs: 50, maxDelayMs: 200, maxRetryMs: 10_000 };
const SECRET_LINE = "VPN password: mail-Secret-8Hq2";

let server: TestSmtpServer;
let proxy: FaultProxy;

beforeAll(async () => {
  server = await startSmtpServer({ security: "plain" });
  proxy = await startFaultProxy({ target: { host: server.host, port: server.port } });
});

afterAll(async () => {
  await proxy?.close();
  await server?.close();
});

afterEach(async () => {
  server.acceptAll();
  proxy.intercept(null);
  proxy.release();
  await proxy.accept();
});

/** Plain SMTP through the proxy: the proxy must see the dialogue to cut at a point of it. */
function mailer(retry: RetryPolicy = FAST_RETRY) {
  const { logger, lines } = capturingLogger();
  const config: EmailConfig = {
    host: proxy.host,
    port: proxy.port,
    security: "none",
    user: null,
    pass: null,
    caPem: null,
    from: "LaaS <laas@lab.test>",
    operators: [],
    timeoutSeconds: 2,
  };
  return { mailer: new SmtpMailer(config, logger, { retry }), logs: lines };
}

let subjectCount = 0;
function mail(): OutgoingMail {
  subjectCount += 1;
  return { to: ["ada@users.test"], subject: `hand-over ${subjectCount}`, text: `${SECRET_LINE}\n` };
}

/** Copies of the message with this subject the server took. */
function copies(subject: string) {
  return server.messages.filter((m) => m.subject === subject);
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`not an Error: ${String(error)}`);
  }
  throw new Error("expected a failure, but it succeeded");
}

/**
 * Cuts the connection right before the server's reply to the end of the message reaches the
 * client: the server took the message, the client never hears so.
 */
function loseTheVerdict(): void {
  let messageEnded = false;
  proxy.intercept(({ direction, chunk }) => {
    if (direction === "toServer" && chunk.includes("\r\n.\r\n")) messageEnded = true;
    if (direction === "toClient" && messageEnded) {
      proxy.intercept(null);
      return "cut-before";
    }
    return "forward";
  });
}

describe("deferred (4xx), then accepted", () => {
  for (const stage of ["connect", "mail", "rcpt", "data"] as const) {
    const code = stage === "connect" ? 421 : 451;
    it(`${code} at ${stage}: sent again, and taken once`, async () => {
      const outgoing = mail();
      const connections = server.connections;
      server.rejectNext(1, { code, stage });
      const { mailer: smtp, logs } = mailer();
      await smtp.send(outgoing);
      expect(copies(outgoing.subject)).toHaveLength(1);
      expect(server.connections - connections).toBe(2);
      expect(logs.join("\n")).toContain("failed; trying again");
    });
  }

  it("without retries, a 421 greeting is a TransientError naming the server", async () => {
    server.rejectNext(1, { code: 421, stage: "connect" });
    const error = await failure(mailer(NO_RETRY).mailer.send(mail()));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(`${proxy.host}:${proxy.port}`);
    expect(error.message).toContain("421");
  });

  it("a 451 at the end of DATA is the server's no, not a lost answer", async () => {
    server.rejectNext(1, { code: 451, stage: "data" });
    const error = await failure(mailer(NO_RETRY).mailer.send(mail()));
    expect(error).toBeInstanceOf(TransientError);
    expect(error).not.toBeInstanceOf(OutcomeUnknownError);
  });
});

describe("refused (5xx): final, never sent again", () => {
  it("a 5xx greeting is a ConfigError", async () => {
    const connections = server.connections;
    server.rejectNext(1, { code: 554, stage: "connect" });
    const error = await failure(mailer().mailer.send(mail()));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("554");
    expect(server.connections - connections).toBe(1);
  });

  it("a 550 for the only recipient is RecipientsRejected", async () => {
    const connections = server.connections;
    server.rejectNext(1, { code: 550, stage: "rcpt" });
    const error = await failure(mailer().mailer.send(mail()));
    expect(error).toBeInstanceOf(RecipientsRejectedError);
    expect(server.connections - connections).toBe(1);
  });

  it("a 554 at the end of DATA is MailRejected", async () => {
    const connections = server.connections;
    server.rejectNext(1, { code: 554, stage: "data" });
    const error = await failure(mailer().mailer.send(mail()));
    expect(error).toBeInstanceOf(MailRejectedError);
    expect(server.connections - connections).toBe(1);
  });
});

describe("the connection lost", () => {
  it("before the message was sent: sent again, taken once", async () => {
    const outgoing = mail();
    const cut = proxy.cutWhen("toClient", (chunk) => chunk.includes("354 "));
    await mailer().mailer.send(outgoing);
    await cut;
    expect(copies(outgoing.subject)).toHaveLength(1);
  });

  it("before the message was sent, without retries: a TransientError, not an unknown outcome", async () => {
    const outgoing = mail();
    const cut = proxy.cutWhen("toClient", (chunk) => chunk.includes("354 "));
    const error = await failure(mailer(NO_RETRY).mailer.send(outgoing));
    await cut;
    expect(error).toBeInstanceOf(TransientError);
    expect(error).not.toBeInstanceOf(OutcomeUnknownError);
    expect(copies(outgoing.subject)).toHaveLength(0);
  });

  it("after the whole message was sent, its verdict lost: sent again (at least once, one Message-ID)", async () => {
    const outgoing = mail();
    loseTheVerdict();
    const { mailer: smtp, logs } = mailer();
    const sent = await smtp.send(outgoing);
    const taken = copies(outgoing.subject);
    expect(taken).toHaveLength(2);
    expect(taken.map((m) => m.headers.get("message-id"))).toEqual([sent.messageId, sent.messageId]);
    const text = logs.join("\n");
    expect(text).toContain('"mayHaveArrived":true');
    expect(text).not.toContain(SECRET_LINE);
  });

  it("after the whole message was sent, without retries: an OutcomeUnknownError that says so", async () => {
    const outgoing = mail();
    loseTheVerdict();
    const error = await failure(mailer(NO_RETRY).mailer.send(outgoing));
    expect(error).toBeInstanceOf(OutcomeUnknownError);
    expect(error.name).toBe("TransientError");
    expect(error.message).toContain("may have taken it");
    expect(error.message).not.toContain(SECRET_LINE);
    expect(copies(outgoing.subject)).toHaveLength(1);
  });

  it("a server that goes silent: a TransientError once the timeout is up", async () => {
    proxy.hold();
    const started = Date.now();
    const error = await failure(mailer(NO_RETRY).mailer.send(mail()));
    expect(error).toBeInstanceOf(TransientError);
    expect(Date.now() - started).toBeLessThan(6_000);
  });
});
