import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { inspect } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NO_RETRY } from "../lib/adapters/retry";
import {
  MailRejectedError,
  RecipientsRejectedError,
  SmtpMailer,
} from "../lib/adapters/smtp/smtp-mailer";
import type { EmailConfig } from "../lib/config/types";
import { AuthError, ConfigError, TransientError } from "../lib/errors";
import { type HandoverDetails, messageTemplatesDir, renderHandover } from "../lib/handover/message";
import type { OutgoingMail } from "../lib/ports/mailer";
import { Secret } from "../lib/secret";
import {
  type Certificate,
  makeCertificate,
  type SmtpServerOptions,
  startSmtpServer,
  type TestSmtpServer,
} from "../sim/smtp";
import { freePort } from "../sim/sshd";
import { capturingLogger } from "./helpers/logs";

const VPN_PASSWORD = "vpn-Secret-7Qx9zT";
const ROOT_PASSWORD = "root-Secret-3Kd2wP";
const SMTP_USER = "laas-mailer";
const SMTP_PASSWORD = "smtp-Pass-w0rd-91";
const BODY_LINE = "Only the recipient may read this line";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function smtp(options: SmtpServerOptions): Promise<TestSmtpServer> {
  const server = await startSmtpServer(options);
  cleanups.push(() => server.close());
  return server;
}

function emailConfig(
  server: { host: string; port: number },
  overrides: Partial<EmailConfig> = {},
): EmailConfig {
  return {
    host: server.host,
    port: server.port,
    security: "none",
    user: null,
    pass: null,
    caPem: null,
    from: "LaaS <laas@lab.test>",
    operators: ["ops@lab.test"],
    timeoutSeconds: 5,
    ...overrides,
  };
}

const withLogin = { user: SMTP_USER, pass: new Secret(SMTP_PASSWORD) };

function mail(overrides: Partial<OutgoingMail> = {}): OutgoingMail {
  return {
    to: ["ada@users.test"],
    cc: ["ops@lab.test"],
    subject: "Your LaaS pod pod1 is ready (booking 42)",
    text: `${BODY_LINE}\nVPN password: ${VPN_PASSWORD}\nroot password: ${ROOT_PASSWORD}\n`,
    html: `<p>${BODY_LINE}</p><p>VPN password: <code>${VPN_PASSWORD}</code></p>`,
    ...overrides,
  };
}

/** What a failed send left behind: the error in every form it may be printed, and the logs. */
async function failure(
  config: EmailConfig,
  outgoing: OutgoingMail = mail(),
): Promise<{ error: Error; printed: string; logs: string }> {
  const { logger, lines } = capturingLogger();
  // One attempt: what the failure is classed as (retries: mail-faults.test.ts).
  const error = await new SmtpMailer(config, logger, { retry: NO_RETRY }).send(outgoing).then(
    () => {
      throw new Error("the mail was sent");
    },
    (caught: unknown) => caught as Error,
  );
  return {
    error,
    printed: `${error.message}\n${String(error)}\n${inspect(error, { depth: 5 })}`,
    logs: lines.join("\n"),
  };
}

function expectNoSecrets(...texts: string[]): void {
  for (const text of texts) {
    for (const secret of [VPN_PASSWORD, ROOT_PASSWORD, SMTP_PASSWORD, BODY_LINE]) {
      expect(text).not.toContain(secret);
    }
  }
}

describe("SmtpMailer", () => {
  it("delivers the message with the envelope and headers it was given", async () => {
    const server = await smtp({ security: "plain" });
    const { logger, lines } = capturingLogger();

    const sent = await new SmtpMailer(emailConfig(server), logger).send(mail());

    expect(server.messages).toHaveLength(1);
    const [got] = server.messages;
    expect(got?.envelope).toEqual({
      from: "laas@lab.test",
      to: ["ada@users.test", "ops@lab.test"],
    });
    expect(got?.from).toEqual(["laas@lab.test"]);
    expect(got?.to).toEqual(["ada@users.test"]);
    expect(got?.cc).toEqual(["ops@lab.test"]);
    expect(got?.subject).toBe("Your LaaS pod pod1 is ready (booking 42)");
    expect(got?.text).toContain(`VPN password: ${VPN_PASSWORD}`);
    expect(got?.html).toContain(`<code>${VPN_PASSWORD}</code>`);
    expect(got?.headers.get("auto-submitted")).toBe("auto-generated");
    expect(got?.headers.get("message-id")).toBe(sent.messageId);
    expect(got?.secure).toBe(false);

    // The log says that it went, to how many, and nothing of what.
    const logged = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toContainEqual(
      expect.objectContaining({ msg: "mail sent", messageId: sent.messageId, recipients: 2 }),
    );
    expectNoSecrets(lines.join("\n"));
    expect(lines.join("\n")).not.toContain("ada@users.test");
  });

  it("upgrades with STARTTLS to a server whose CA it trusts, and logs in", async () => {
    const server = await smtp({
      security: "starttls",
      auth: { user: SMTP_USER, pass: SMTP_PASSWORD },
    });
    const config = emailConfig(server, { security: "starttls", caPem: server.caPem, ...withLogin });

    await new SmtpMailer(config, capturingLogger().logger).send(mail());

    expect(server.messages).toHaveLength(1);
    expect(server.messages[0]).toMatchObject({ secure: true, user: SMTP_USER });
    expect(server.logins).toEqual([{ user: SMTP_USER, ok: true }]);
  });

  it("speaks TLS from the first byte when security is tls", async () => {
    const server = await smtp({ security: "tls" });
    await new SmtpMailer(
      emailConfig(server, { security: "tls", caPem: server.caPem }),
      capturingLogger().logger,
    ).send(mail());
    expect(server.messages[0]?.secure).toBe(true);
  });

  describe("refuses a certificate it cannot trust, as a configuration error", () => {
    let otherName: Certificate;
    beforeAll(async () => {
      otherName = await makeCertificate(["DNS:mail.example.org"]);
    });

    it("with STARTTLS and no CA configured (system CAs)", async () => {
      const server = await smtp({ security: "starttls" });
      const { error, printed, logs } = await failure(
        emailConfig(server, { security: "starttls", caPem: null }),
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.message).toContain(`mail server 127.0.0.1:${server.port}`);
      expect(error.message).toContain("DEPTH_ZERO_SELF_SIGNED_CERT");
      expect(error.message).toContain("handover.email.ca");
      expect(server.messages).toHaveLength(0);
      expectNoSecrets(printed, logs);
    });

    it("with TLS and a CA that did not sign the server's certificate", async () => {
      const server = await smtp({ security: "tls" });
      const { error } = await failure(
        emailConfig(server, { security: "tls", caPem: otherName.cert }),
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect(server.messages).toHaveLength(0);
    });

    it("with a trusted certificate made out to another name", async () => {
      const server = await smtp({ security: "starttls", certificate: otherName });
      const { error } = await failure(
        emailConfig(server, { security: "starttls", caPem: otherName.cert }),
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.message).toContain("ERR_TLS_CERT_ALTNAME_INVALID");
      expect(server.messages).toHaveLength(0);
    });
  });

  it("never falls back to plain text when STARTTLS is configured but not offered", async () => {
    const server = await smtp({ security: "plain" });
    const { error, printed } = await failure(
      emailConfig(server, { security: "starttls", caPem: server.caPem }),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/does not offer STARTTLS/);
    expect(server.messages).toHaveLength(0);
    expectNoSecrets(printed);
  });

  it("says so when the server wants TLS and security is none", async () => {
    const server = await smtp({ security: "starttls" });
    const { error } = await failure(emailConfig(server, { security: "none" }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/wants TLS first .*handover\.email\.security \(none\)/);
  });

  it("raises AuthError on a wrong password, without the password anywhere", async () => {
    const server = await smtp({
      security: "starttls",
      auth: { user: SMTP_USER, pass: "the-right-one" },
    });
    const { error, printed, logs } = await failure(
      emailConfig(server, { security: "starttls", caPem: server.caPem, ...withLogin }),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain(`mail server 127.0.0.1:${server.port} refused the login`);
    expect(error.message).toContain("535");
    expect(server.logins).toEqual([{ user: SMTP_USER, ok: false }]);
    expect(server.messages).toHaveLength(0);
    expectNoSecrets(printed, logs);
  });

  it("raises AuthError when the server wants a login and none is configured", async () => {
    const server = await smtp({ security: "starttls", auth: { user: SMTP_USER, pass: "x" } });
    const { error } = await failure(
      emailConfig(server, { security: "starttls", caPem: server.caPem }),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toMatch(/wants a login/);
  });

  it.each(["rcpt", "data"] as const)(
    "raises TransientError when the server defers at %s (4xx)",
    async (stage) => {
      const server = await smtp({ security: "plain" });
      server.rejectNext(1, { code: 451, stage });
      const { error, printed, logs } = await failure(emailConfig(server));
      expect(error).toBeInstanceOf(TransientError);
      expect(error.message).toContain(`mail server 127.0.0.1:${server.port} deferred`);
      expect(error.message).toContain("451");
      expect(server.messages).toHaveLength(0);
      expectNoSecrets(printed, logs);

      // What a retry does: the next attempt goes through.
      await new SmtpMailer(emailConfig(server), capturingLogger().logger).send(mail());
      expect(server.messages).toHaveLength(1);
    },
  );

  it("says which recipients were refused (5xx) when none was taken", async () => {
    const server = await smtp({ security: "plain" });
    server.rejectNext(1, { code: 550, stage: "rcpt", message: "No such user here" });
    const { error, printed, logs } = await failure(emailConfig(server));
    expect(error).toBeInstanceOf(RecipientsRejectedError);
    expect(error.name).toBe("RecipientsRejected");
    expect(error.message).toBe(
      `mail server 127.0.0.1:${server.port} refused every recipient: ` +
        "ada@users.test (550 5.1.1 No such user here), ops@lab.test (550 5.1.1 No such user here)",
    );
    expect((error as RecipientsRejectedError).rejected).toEqual(["ada@users.test", "ops@lab.test"]);
    expect(server.messages).toHaveLength(0);
    expectNoSecrets(printed, logs);
  });

  it("reports a recipient refused while the others got the message", async () => {
    const server = await smtp({ security: "plain" });
    server.rejectNext(1, { code: 550, stage: "rcpt", only: ["ada@users.test"] });
    const { error, printed } = await failure(emailConfig(server));
    expect(error).toBeInstanceOf(RecipientsRejectedError);
    const rejected = error as RecipientsRejectedError;
    expect(rejected.rejected).toEqual(["ada@users.test"]);
    expect(rejected.accepted).toEqual(["ops@lab.test"]);
    expect(rejected.messageId).toMatch(/^<.+>$/);
    expect(error.message).toMatch(
      /refused ada@users\.test \(550 .*\); the message went to ops@lab\.test only/,
    );
    expect(server.messages.map((m) => m.envelope.to)).toEqual([["ops@lab.test"]]);
    expectNoSecrets(printed);
  });

  it("does not repeat a refusal of the message that quotes it", async () => {
    const server = await smtp({ security: "plain" });
    server.rejectNext(1, {
      code: 554,
      stage: "data",
      message: `Spam detected in "${BODY_LINE}" near ${VPN_PASSWORD}`,
    });
    const { error, printed, logs } = await failure(emailConfig(server));
    expect(error).toBeInstanceOf(MailRejectedError);
    expect(error).not.toBeInstanceOf(TransientError);
    expect(error.message).toBe(
      `mail server 127.0.0.1:${server.port} refused the message (554 5.6.0)`,
    );
    expectNoSecrets(printed, logs);
  });

  it("does not quote a server reply that repeats the SMTP password", async () => {
    const server = await smtp({ security: "plain" });
    server.rejectNext(1, { code: 550, stage: "rcpt", message: `bad ${SMTP_PASSWORD}` });
    const { error, printed } = await failure(emailConfig(server, withLogin));
    expect(error).toBeInstanceOf(RecipientsRejectedError);
    expect(error.message).toContain("ada@users.test (550 5.1.1)");
    expectNoSecrets(printed);
  });

  it("raises TransientError naming host:port when the server is down", async () => {
    const port = await freePort("127.0.0.1");
    const { error, printed, logs } = await failure(
      emailConfig({ host: "127.0.0.1", port }, withLogin),
    );
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toBe(`mail server 127.0.0.1:${port} unreachable (ECONNREFUSED)`);
    expectNoSecrets(printed, logs);
  });

  describe("with a server that accepts connections and never greets", () => {
    let silent: Server;
    let port: number;
    beforeAll(async () => {
      silent = createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      const address = silent.address();
      port = typeof address === "object" && address !== null ? address.port : 0;
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });

    it("gives up after timeoutSeconds with a TransientError", async () => {
      const started = Date.now();
      const { error } = await failure(
        emailConfig({ host: "127.0.0.1", port }, { timeoutSeconds: 0.3 }),
      );
      expect(error).toBeInstanceOf(TransientError);
      // Connection, greeting and idle timeouts are all timeoutSeconds: whichever ends first.
      expect(error.message).toMatch(
        new RegExp(`^mail server 127\\.0\\.0\\.1:${port}: no (greeting|answer) within 0\\.3 s$`),
      );
      expect(Date.now() - started).toBeLessThan(5000);
    });
  });

  it("refuses a recipient that is not one plain address, before connecting", async () => {
    const server = await smtp({ security: "plain" });
    const { error } = await failure(
      emailConfig(server),
      mail({ to: ["ada@users.test, mallory@evil.test"] }),
    );
    expect(error).toBeInstanceOf(RecipientsRejectedError);
    expect(error.message).toContain('"ada@users.test, mallory@evil.test"');
    expect(server.messages).toHaveLength(0);
  });
});

const details: HandoverDetails = {
  bookingId: "42",
  userName: "Ada Lovelace",
  hostName: "pod1",
  hostAddress: "10.20.0.5",
  vpnServer: "vpn.lab.example.org",
  vpnUser: "ada",
  vpnPassword: VPN_PASSWORD,
  vpnPasswordFrom: null,
  rootPassword: ROOT_PASSWORD,
  rootUser: "root",
  installer: "Fuel",
  scenario: "os-nosdn-nofeature-noha",
  end: "2017-06-01T20:00:00+02:00",
  purpose: "Testing Fuel\nwith two lines",
  sshKey: { installed: true, fingerprint: "SHA256:k3Yf9Qm2uVb1o0yLx7cZt4s8Wn5rPd6eHj2gA1iBqCE" },
  dashboardUrl: "https://labs.opnfv.org/",
};

describe("renderHandover", () => {
  it("finds its templates under templates/messages", () => {
    expect(messageTemplatesDir()).toMatch(/[/\\]templates[/\\]messages$/);
    expect(existsSync(`${messageTemplatesDir()}/handover.txt.njk`)).toBe(true);
  });

  it("names the pod and the booking in the subject", () => {
    expect(renderHandover(details).subject).toBe("Your LaaS pod pod1 is ready (booking 42)");
  });

  it.each(["text", "html"] as const)("puts every detail in the %s version", (kind) => {
    const body = renderHandover(details)[kind];
    for (const expected of [
      "Ada Lovelace",
      "is ready",
      "pod1",
      "10.20.0.5",
      "42",
      "vpn.lab.example.org",
      "ada",
      VPN_PASSWORD,
      ROOT_PASSWORD,
      "ssh root@10.20.0.5",
      "SHA256:k3Yf9Qm2uVb1o0yLx7cZt4s8Wn5rPd6eHj2gA1iBqCE",
      "Password login works in any case",
      "Fuel",
      "os-nosdn-nofeature-noha",
      // 20:00 at +02:00 is 18:00 UTC.
      "Thursday 2017-06-01 18:00 UTC",
      "reimaged",
      "Testing Fuel",
      "with two lines",
      "https://labs.opnfv.org/",
    ]) {
      expect(body, expected).toContain(expected);
    }
  });

  it("keeps the purpose's lines in the text, each indented under its heading", () => {
    const { text } = renderHandover(details);
    expect(text).toContain(
      "Purpose, as you wrote it\n------------------------\n    Testing Fuel\n    with two lines\n",
    );
  });

  it("escapes hostile dashboard text in the HTML", () => {
    const { html } = renderHandover({
      ...details,
      userName: '<img src=x onerror="alert(1)">',
      purpose:
        "<script>alert('pwned')</script>\n</blockquote><a href=\"https://evil.test\">click</a>",
    });
    expect(html).not.toContain("<script");
    expect(html).not.toContain("<img");
    expect(html).not.toContain('<a href="https://evil.test"');
    expect(html).toContain("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;");
    expect(html).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
    expect(html.match(/<blockquote/g)).toHaveLength(1);
    expect(html.match(/<\/blockquote>/g)).toHaveLength(1);
  });

  it("strips control characters from the text and keeps single-line values on one line", () => {
    const { text, subject } = renderHandover({
      ...details,
      bookingId: "42\r\nBcc: mallory@evil.test",
      userName: "Ada\nPassword:   fake-password\u001b[2J",
      purpose: "line one\u0007\u001b[31m red\r\nline\u0000 two\u202e reversed\tand a tab",
    });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is checked
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/);
    expect(text).toContain("Hello Ada Password:   fake-password[2J,");
    expect(text).not.toMatch(/^Password: {3}fake-password/m);
    expect(text).toContain("    line one[31m red\n    line two reversed\tand a tab\n");
    expect(subject).toBe("Your LaaS pod pod1 is ready (booking 42 Bcc: mallory@evil.test)");
  });

  it("names an account that is the user's already as unchanged, with no password", () => {
    const { text, html } = renderHandover({
      ...details,
      vpnPassword: null,
      vpnPasswordFrom: "17",
    });
    expect(text).toContain(
      "Your VPN account ada is unchanged: use the password you were given with booking 17.",
    );
    expect(text).toMatch(/^ {4}Password: {3}\(unchanged: the one given with booking 17\)$/m);
    expect(html).toContain("Your VPN account <code>ada</code> is unchanged");
    expect(html).toContain("(unchanged: the one given with booking 17)");
    for (const body of [text, html]) {
      expect(body).not.toContain(VPN_PASSWORD);
      expect(body).toContain("the VPN account is deleted once none of your bookings holds it");
    }
  });

  it("says that no VPN account was made and that the root password is unchanged", () => {
    const plain = {
      ...details,
      vpnServer: null,
      vpnUser: null,
      vpnPassword: null,
      rootPassword: null,
      installer: null,
      scenario: null,
      purpose: "",
      dashboardUrl: null,
    };
    for (const body of Object.values(renderHandover(plain))) {
      expect(body).not.toContain(VPN_PASSWORD);
      expect(body).not.toContain(ROOT_PASSWORD);
    }
    const { text, html } = renderHandover(plain);
    for (const body of [text, html]) {
      expect(body).toContain("No VPN account was made for this booking");
      expect(body).toContain("The root password was not changed");
      expect(body).toContain("lab network");
      expect(body).not.toContain("Password login works");
      expect(body).toContain("(none given)");
      expect(body).not.toContain("dashboard:");
    }
    expect(text).toMatch(/Installer: +none\n/);
    expect(text).toMatch(/Scenario: +none\n/);
  });

  it.each([
    [
      { installed: false as const, reason: "none given" },
      "Your SSH key was not installed (none given)",
    ],
    [
      { installed: false as const, reason: "refused: ssh-dss keys are not accepted" },
      "Your SSH key was not installed (refused: ssh-dss keys are not accepted)",
    ],
    [null, "This lab does not install SSH keys from the dashboard"],
  ])("says why no SSH key was installed (%j)", (sshKey, said) => {
    for (const body of [
      renderHandover({ ...details, sshKey }).text,
      renderHandover({ ...details, sshKey }).html,
    ]) {
      expect(body).toContain(said);
      expect(body).toContain("Password login works in any case");
      expect(body).not.toContain("was installed for root");
    }
  });

  it("links the dashboard only when it is an http(s) URL", () => {
    const { html, text } = renderHandover({ ...details, dashboardUrl: "javascript:alert(1)" });
    expect(html).not.toContain("javascript:");
    expect(text).not.toContain("javascript:");
  });

  it("refuses an end that is not a time", () => {
    expect(() => renderHandover({ ...details, end: "soon" })).toThrow(/"soon" is not a time/);
  });

  it("survives the trip through a real mail server", async () => {
    const server = await smtp({ security: "plain" });
    const message = renderHandover({ ...details, purpose: "ünïcödé purpose <b>bold</b>" });
    await new SmtpMailer(emailConfig(server), capturingLogger().logger).send({
      to: ["ada@users.test"],
      ...message,
    });
    const [got] = server.messages;
    expect(got?.subject).toBe(message.subject);
    expect(got?.text.trim()).toBe(message.text.trim());
    expect(got?.html).toContain("ünïcödé purpose &lt;b&gt;bold&lt;/b&gt;");
    expect(got?.text).toContain(`Password:   ${ROOT_PASSWORD}`);
  });
});
