/**
 * The config guards of issue 10: syntax errors without the line's text, secret paths that must
 * exist, files recognised by their fields, the shipped example secrets refused outside the demo
 * and the tests, and one store per lab. Every message is checked for the absence of secrets.
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { parseDocument } from "yaml";
import { loadAnyConfig } from "../lib/cli/config";
import { isShippedExample } from "../lib/config/examples";
import { loadInstallerConfig, loadPharosConfig } from "../lib/config/load";
import { ConfigError } from "../lib/errors";
import { describeRun, runCommand } from "../sim/subprocess";

const REPO = resolve(import.meta.dirname, "..");
const SHIPPED_SECRETS_DIR = join(REPO, "conf", "secrets");
const shippedSecret = (name: string) =>
  readFileSync(join(SHIPPED_SECRETS_DIR, name), "utf8").trimEnd();
/** The secret files shipped in conf/secrets (the key pairs' .pub halves are not secret). */
const SHIPPED_SECRET_FILES = readdirSync(SHIPPED_SECRETS_DIR).filter(
  (name) => name !== "README.md" && !name.endsWith(".pub"),
);

/** Values a message must never contain: the shipped secrets and those a test plants. */
const planted: string[] = [];

async function configErrorOf(load: Promise<unknown>): Promise<string> {
  const error = await load.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  const message = (error as ConfigError).message;
  for (const secret of [...SHIPPED_SECRET_FILES.map(shippedSecret), ...planted]) {
    expect(message).not.toContain(secret);
  }
  return message;
}

let root: string;
let conf: string;
let pharos: string;
const file = (name: string) => join(conf, name);

function edit(name: string, change: (doc: ReturnType<typeof parseDocument>) => void): void {
  const doc = parseDocument(readFileSync(file(name), "utf8"));
  change(doc);
  writeFileSync(file(name), String(doc));
}

function replaceLine(name: string, startsWith: string, line: string): number {
  const lines = readFileSync(file(name), "utf8").split("\n");
  const index = lines.findIndex((l) => l.startsWith(startsWith));
  expect(index).toBeGreaterThanOrEqual(0);
  lines[index] = line;
  writeFileSync(file(name), lines.join("\n"));
  return index + 1;
}

beforeEach(() => {
  planted.length = 0;
  root = mkdtempSync(join(tmpdir(), "laas-guards-"));
  conf = join(root, "conf");
  pharos = join(conf, "pharos.yaml");
  cpSync(join(REPO, "conf"), conf, { recursive: true });
  cpSync(join(REPO, "templates"), join(root, "templates"), { recursive: true });
});

afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(root, { recursive: true, force: true });
});

describe("a YAML syntax error", () => {
  const token = "inline-token-4f9a2c7e1b";

  it("names file, line and column and a reason, never the line with its inline token", async () => {
    planted.push(token);
    const line = replaceLine("pharos.yaml", "token:", `token: ${token}: broken`);
    // Each load started only when it is awaited: one left waiting would reject unhandled.
    for (const load of [() => loadPharosConfig(pharos), () => loadAnyConfig(pharos)]) {
      const message = await configErrorOf(load());
      expect(message).toMatch(
        new RegExp(
          `^${pharos}: line ${line}, column \\d+: invalid YAML: a mapping starts on the line of its key`,
        ),
      );
      expect(message).not.toContain("broken");
      expect(message.split("\n")).toHaveLength(1);
    }
  });

  it("never repeats the source that yaml's own message quotes", async () => {
    planted.push(token);
    // yaml: "Block scalar header includes extra characters: |<token>".
    const line = replaceLine("pharos.yaml", "token:", `token: |${token}`);
    const message = await configErrorOf(loadAnyConfig(pharos));
    expect(message).toMatch(new RegExp(`^${pharos}: line ${line}, column \\d+: invalid YAML: `));
    // yaml: "Unresolved alias (the anchor must be set before the alias): <token>".
    replaceLine("pharos.yaml", "token:", `token: *${token}`);
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: invalid YAML: an alias (*name) names no anchor (&name) before it`,
    );
    // yaml: `Unexpected scalar token in YAML stream: "<token>"`, in an installer config.
    writeFileSync(file("fuel.yaml"), `${readFileSync(file("fuel.yaml"), "utf8")}] ${token}\n`);
    const installer = await configErrorOf(loadAnyConfig(file("fuel.yaml")));
    expect(installer).toMatch(new RegExp(`^${file("fuel.yaml")}: line \\d+, column \\d+: `));
  });
});

describe("a secret that looks like a path", () => {
  it("must name an existing file, even without ./", async () => {
    edit("pharos.yaml", (doc) => doc.set("token", "secrets/dashboard-tokn"));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toMatch(new RegExp(`^${pharos}: token: names no file \\(ENOENT\\)`));
    // The value may be a secret given inline by mistake: it is not repeated.
    expect(message).not.toContain("dashboard-tokn");
  });

  it("is refused when it starts with . or ~, or holds / anywhere, as a base64 token may", async () => {
    const base64 = "q83vEjRWeJA/ab+cdEFghIJklMNop==";
    planted.push(base64, ".hidden-token", "~token");
    for (const [field, value] of [
      ["token", base64],
      ["token", ".hidden-token"],
      ["token", "~token"],
      ["token", "/no/such/abs/token"],
    ] as const) {
      edit("pharos.yaml", (doc) => doc.set(field, value));
      const message = await configErrorOf(loadPharosConfig(pharos));
      expect(message).toContain(`${pharos}: token: names no file`);
      expect(message).not.toContain(value);
    }
    edit("vpn.yaml", (doc) => doc.setIn(["authentication", "pass"], base64));
    edit("pharos.yaml", (doc) => doc.set("token", "./secrets/dashboard-token"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(
      /vpn\.yaml: authentication\.pass: names no file \(ENOENT\)/,
    );
  });

  it("is read when it names a file, and a plain value is still the value", async () => {
    writeFileSync(file("secrets/own-token"), "a-token-of-the-lab\n");
    edit("pharos.yaml", (doc) => doc.set("token", "secrets/own-token"));
    const config = await loadPharosConfig(pharos);
    expect(config.token.reveal()).toBe("a-token-of-the-lab");
    expect(config.token.source).toBe(file("secrets/own-token"));
    edit("pharos.yaml", (doc) => doc.set("token", "plainvalue0123"));
    expect((await loadPharosConfig(pharos)).token.source).toBe("inline");
  });

  it("shows the path when something is there but cannot be read", async () => {
    edit("pharos.yaml", (doc) => doc.set("token", "secrets"));
    // A bare name without /: looked up, a directory is no file, so it is the value.
    expect((await loadPharosConfig(pharos)).token.source).toBe("inline");
    edit("pharos.yaml", (doc) => doc.set("token", "secrets/"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: token: cannot read secret file ${file("secrets")} (EISDIR)`,
    );
  });
});

describe("a config given to a command", () => {
  it("is recognised as a pharos config by its fields when dashboard is missing", async () => {
    edit("pharos.yaml", (doc) => doc.delete("dashboard"));
    expect(await configErrorOf(loadAnyConfig(pharos))).toBe(`${pharos}: dashboard: required`);
    // Under another name too (no pharos.yaml of that name to fall back on).
    cpSync(pharos, file("lab.yaml"));
    cpSync(join(REPO, "conf", "pharos.yaml"), pharos);
    expect(await configErrorOf(loadAnyConfig(file("lab.yaml")))).toBe(
      `${file("lab.yaml")}: dashboard: required`,
    );
  });

  it("is recognised as an installer config by its fields", async () => {
    edit("fuel.yaml", (doc) => doc.delete("installer"));
    expect(await configErrorOf(loadAnyConfig(file("fuel.yaml")))).toBe(
      `${file("fuel.yaml")}: installer: required`,
    );
  });

  it("with fields of both kinds says which it looks like and what it lacks", async () => {
    edit("pharos.yaml", (doc) => {
      doc.delete("dashboard");
      doc.set("fog", doc.createNode({ server: "http://127.0.0.1/fog/" }));
    });
    expect(await configErrorOf(loadAnyConfig(pharos))).toBe(
      `${pharos}: has fields of a pharos config (token, default_configs, polling, lab_subnets, power, relay, handover) and of an installer config (fog): it looks like a pharos config, which lacks dashboard and has no field fog`,
    );
    writeFileSync(file("odd.yaml"), "token: x\nfog: {}\n");
    expect(await configErrorOf(loadAnyConfig(file("odd.yaml")))).toMatch(
      /odd\.yaml: has fields of a pharos config \(token\) and of an installer config \(fog\): it looks as much like one as the other; a pharos config lacks dashboard, database, default_configs, inventory, logging_dir, polling; an installer config lacks database, dhcp_log, dhcp_server, installer, logging_dir, hypervisor_config, inventory, vpn_config$/,
    );
  });

  it("with fields of neither kind, or no mapping, is refused naming both kinds", async () => {
    writeFileSync(file("odd.yaml"), "database: ../var/laas\ninventory: inventory.yaml\n");
    expect(await configErrorOf(loadAnyConfig(file("odd.yaml")))).toMatch(
      /odd\.yaml: is neither a pharos config \(it has none of dashboard, default_configs, .*\) nor an installer config \(none of dhcp_log, .*fog/,
    );
    writeFileSync(file("odd.yaml"), "- a\n- list\n");
    expect(await configErrorOf(loadAnyConfig(file("odd.yaml")))).toMatch(
      /odd\.yaml: expected a mapping: a pharos config \(.*\) or an installer config \(.*\)/,
    );
  });
});

describe("the shipped example secrets", () => {
  const refuse = { allowExampleSecrets: false };

  it("are every secret file in conf/secrets, and nothing else", () => {
    expect(SHIPPED_SECRET_FILES.sort()).toEqual([
      "dashboard-token",
      "fog-api-key",
      "fog-user-key",
      "handover-key",
      "ldap-pass",
      "power_id_ed25519",
      "relay_id_ed25519",
    ]);
    for (const name of SHIPPED_SECRET_FILES) {
      expect(isShippedExample(readFileSync(join(SHIPPED_SECRETS_DIR, name), "utf8")), name).toBe(
        true,
      );
    }
    expect(isShippedExample("EXAMPLE-dashboard-token-replace-me-not")).toBe(false);
    expect(isShippedExample(Buffer.alloc(32, 7).toString("base64"))).toBe(false);
  });

  it("are refused at load, each field named with how to make a real one", async () => {
    const message = await configErrorOf(loadPharosConfig(pharos, refuse));
    const lines = message.split("\n");
    expect(lines.map((l) => l.slice(0, l.indexOf(" is an example")))).toEqual([
      `${pharos}: token:`,
      `${pharos}: power.key:`,
      `${pharos}: relay.key:`,
      `${pharos}: handover.sealing_key:`,
    ]);
    expect(lines[0]).toContain(`(${file("secrets/dashboard-token")})`);
    expect(lines[1]).toContain("ssh-keygen -t ed25519");
    expect(lines[3]).toContain("openssl rand -base64 32");
    expect(lines[3]).toContain("LAAS_ALLOW_EXAMPLE_SECRETS=1");

    // Replaced in pharos.yaml, they are found in the installer and VPN files.
    writeFileSync(file("secrets/dashboard-token"), "lab-token-0001\n");
    writeFileSync(file("secrets/handover-key"), Buffer.alloc(32, 9).toString("base64"));
    edit("pharos.yaml", (doc) => {
      doc.delete("power");
      doc.delete("relay");
    });
    edit("inventory.yaml", (doc) => doc.deleteIn([52, "power"]));
    expect((await configErrorOf(loadPharosConfig(pharos, refuse))).split("\n")).toEqual([
      expect.stringMatching(/fuel\.yaml: fog\.api_key: is an example shipped in conf\/secrets\//),
      expect.stringMatching(/fuel\.yaml: fog\.user_key: is an example shipped/),
    ]);
    writeFileSync(file("secrets/fog-api-key"), "lab-api-0001\n");
    writeFileSync(file("secrets/fog-user-key"), "lab-user-0001\n");
    expect(await configErrorOf(loadPharosConfig(pharos, refuse))).toMatch(
      /^\S*vpn\.yaml: authentication\.pass: is an example shipped in conf\/secrets\/ \(\S*ldap-pass\), known to everyone/,
    );
    writeFileSync(file("secrets/ldap-pass"), "lab-pass-0001\n");
    await expect(loadPharosConfig(pharos, refuse)).resolves.toBeTruthy();
  });

  it("are recognised inline, reflowed, as the same sealing key in hex, and as the same SSH key", async () => {
    edit("pharos.yaml", (doc) => {
      // Inline, from a literal block: a final newline.
      doc.set("token", `${shippedSecret("dashboard-token")}\n`);
      // The key reflowed by a YAML folded block: other line breaks, same key.
      doc.setIn(["relay", "key"], shippedSecret("relay_id_ed25519").replace(/\n/g, "\n\n"));
    });
    const hex = Buffer.from(shippedSecret("handover-key"), "base64").toString("hex");
    writeFileSync(file("secrets/handover-key"), `${hex}\n`);
    // The shipped power key with another comment: other bytes, the same key pair.
    chmodSync(file("secrets/power_id_ed25519"), 0o600);
    execFileSync("ssh-keygen", [
      "-q",
      "-c",
      "-C",
      "renamed",
      "-f",
      file("secrets/power_id_ed25519"),
    ]);
    expect(readFileSync(file("secrets/power_id_ed25519"), "utf8")).not.toBe(
      readFileSync(join(SHIPPED_SECRETS_DIR, "power_id_ed25519"), "utf8"),
    );
    const message = await configErrorOf(loadPharosConfig(pharos, refuse));
    expect(message.split("\n").map((l) => l.slice(0, l.indexOf(" is an example")))).toEqual([
      `${pharos}: token:`,
      `${pharos}: power.key:`,
      `${pharos}: relay.key:`,
      `${pharos}: handover.sealing_key:`,
    ]);
  });

  it("are refused unless LAAS_ALLOW_EXAMPLE_SECRETS=1 says this is the demo or a test", async () => {
    vi.stubEnv("LAAS_ALLOW_EXAMPLE_SECRETS", "");
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(/token: is an example/);
    expect(await configErrorOf(loadInstallerConfig(file("fuel.yaml")))).toMatch(
      /fuel\.yaml: fog\.api_key: is an example/,
    );
    vi.stubEnv("LAAS_ALLOW_EXAMPLE_SECRETS", "yes");
    expect(await configErrorOf(loadAnyConfig(pharos))).toMatch(/token: is an example/);
    vi.stubEnv("LAAS_ALLOW_EXAMPLE_SECRETS", "1");
    await expect(loadPharosConfig(pharos)).resolves.toBeTruthy();
  });

  it("stop `laas listen` at start, without the switch", async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.LAAS_ALLOW_EXAMPLE_SECRETS;
    const result = await runCommand(
      process.execPath,
      [join(REPO, "bin", "laas.mjs"), "listen", "--once", "--config", pharos],
      { cwd: root, env, timeoutMs: 60_000 },
    );
    expect(result.code, describeRun(result)).toBe(2);
    expect(result.stderr).toMatch(
      /^laas: configuration error: conf\/pharos\.yaml: token: is an example shipped in conf\/secrets\//m,
    );
    for (const name of SHIPPED_SECRET_FILES) {
      expect(result.stdout + result.stderr).not.toContain(shippedSecret(name));
    }
  });
});

describe("one store per lab", () => {
  const lab = () => join(root, "var", "laas");
  const other = () => join(root, "var", "other");

  it("refuses an installer config naming another database than pharos.yaml", async () => {
    edit("joid.yaml", (doc) => doc.set("database", "../var/other"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${file("joid.yaml")}: database: ${other()} is another store than ${pharos}'s database, ${lab()}: a lab has one store, so every config names the same database`,
    );
  });

  it("refuses a VPN file naming another database, alone or in the lab", async () => {
    edit("vpn.yaml", (doc) => doc.set("database", "../var/other"));
    const against = (config: string) =>
      `${file("vpn.yaml")}: database: ${other()} is another store than ${config}'s database, ${lab()}: a lab has one store, so every config names the same database`;
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(against(pharos));
    expect(await configErrorOf(loadInstallerConfig(file("fuel.yaml")))).toBe(
      against(file("fuel.yaml")),
    );
  });

  it("takes the same folder through a symbolic link for the same store", async () => {
    mkdirSync(lab(), { recursive: true });
    symlinkSync(lab(), join(root, "var", "alias"));
    edit("fuel.yaml", (doc) => doc.set("database", "../var/alias"));
    const config = await loadPharosConfig(pharos);
    expect(config.database).toBe(lab());
    // A command on the installer config works on the lab's store, as pharos.yaml names it.
    expect((await loadAnyConfig(file("fuel.yaml"))).lab.database).toBe(lab());
  });

  it("gives a command on an installer config the one store of the pharos.yaml beside it", async () => {
    const loaded = await loadAnyConfig(file("fuel.yaml"));
    expect(loaded.installer?.file).toBe(file("fuel.yaml"));
    expect(loaded.lab.database).toBe(lab());

    // One the lab lists naming another store: the lab's pharos.yaml is refused, naming both.
    edit("fuel.yaml", (doc) => doc.set("database", "../var/other"));
    expect(await configErrorOf(loadAnyConfig(file("fuel.yaml")))).toBe(
      `${file("fuel.yaml")}: database: ${other()} is another store than ${pharos}'s database, ${lab()}: a lab has one store, so every config names the same database`,
    );

    // One the lab does not list, and its VPN file: refused against the pharos.yaml beside them.
    cpSync(join(REPO, "conf", "fuel.yaml"), file("fuel.yaml"));
    cpSync(file("fuel.yaml"), file("spare.yaml"));
    cpSync(file("vpn.yaml"), file("spare-vpn.yaml"));
    edit("spare.yaml", (doc) => {
      doc.set("database", "../var/other");
      doc.set("vpn_config", "spare-vpn.yaml");
    });
    edit("spare-vpn.yaml", (doc) => doc.set("database", "../var/other"));
    expect((await configErrorOf(loadAnyConfig(file("spare.yaml")))).split("\n")).toEqual(
      ["spare.yaml", "spare-vpn.yaml"].map(
        (name) =>
          `${file(name)}: database: ${other()} is another store than ${pharos}'s database, ${lab()}: a lab has one store, so every config names the same database`,
      ),
    );

    // Without a pharos.yaml beside it, the installer config is the lab and its store the store.
    rmSync(pharos);
    expect((await loadAnyConfig(file("spare.yaml"))).lab.database).toBe(other());
  });

  it("stops `laas deploy` on an installer config naming another store before anything is done", async () => {
    edit("fuel.yaml", (doc) => doc.set("database", "../var/other"));
    edit("vpn.yaml", (doc) => doc.set("database", "../var/other"));
    const result = await runCommand(
      process.execPath,
      [
        join(REPO, "bin", "laas.mjs"),
        "deploy",
        "--config",
        file("fuel.yaml"),
        "--host",
        "fog-machine-4",
      ],
      { cwd: root, timeoutMs: 60_000 },
    );
    expect(result.code, describeRun(result)).toBe(2);
    expect(result.stderr).toMatch(
      /^laas: configuration error: conf\/fuel\.yaml: database: \S+\/var\/other is another store than conf\/pharos\.yaml's database/m,
    );
    // Neither store was created.
    expect(readdirSync(root).sort()).toEqual(["conf", "templates"]);
  });
});

describe("config error messages", () => {
  it("never echo a secret of the wrong type, whatever the secret field", async () => {
    const value = 918273645;
    planted.push(String(value));
    for (const [name, path] of [
      ["pharos.yaml", ["handover", "sealing_key"]],
      ["pharos.yaml", ["handover", "email", "pass"]],
      ["pharos.yaml", ["relay", "key"]],
      ["pharos.yaml", ["token"]],
      ["fuel.yaml", ["fog", "api_key"]],
      ["vpn.yaml", ["authentication", "pass"]],
    ] as const) {
      for (const each of ["pharos.yaml", "fuel.yaml", "vpn.yaml"]) {
        cpSync(join(REPO, "conf", each), file(each));
      }
      edit(name, (doc) => doc.setIn([...path], value));
      const message = await configErrorOf(loadPharosConfig(pharos));
      expect(message).toContain(`${path.join(".")}: expected a string or {file: path}`);
      expect(message).not.toContain(String(value));
    }
  });

  it("never echo an inline secret that fails a check", async () => {
    const sealing = "c2VjcmV0LWJ1dC1ub3QtMzItYnl0ZXM=";
    planted.push(sealing, "not-a-private-key-but-secret");
    edit("pharos.yaml", (doc) => {
      doc.setIn(["handover", "sealing_key"], sealing);
      doc.setIn(["relay", "key"], "not-a-private-key-but-secret");
    });
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message.split("\n")).toEqual([
      `${pharos}: relay.key: is not an OpenSSH or PEM private key`,
      `${pharos}: handover.sealing_key: must be 32 bytes as base64 (openssl rand -base64 32) or 64 hex digits`,
    ]);
  });
});
