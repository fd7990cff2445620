/**
 * `power.type: ipmi` and `power.ipmi` in pharos.yaml and the inventory: merged field by field,
 * complete for each IPMI host or refused at load, the password one ipmitool reads whole.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { inventoryHostByResource, loadPharosConfig, powerFor } from "../lib/config/load";
import type { PharosConfig } from "../lib/config/types";
import { ConfigError } from "../lib/errors";

const REPO = resolve(import.meta.dirname, "..");

let conf: string;
let pharos: string;
let inventory: string;

beforeEach(() => {
  const root = mkdtempSync(join(tmpdir(), "laas-ipmi-config-"));
  conf = join(root, "conf");
  pharos = join(conf, "pharos.yaml");
  inventory = join(conf, "inventory.yaml");
  cpSync(join(REPO, "conf"), conf, { recursive: true });
  cpSync(join(REPO, "templates"), join(root, "templates"), { recursive: true });
  writeFileSync(join(conf, "secrets", "bmc-password"), "bmc-Secret-1\n", { mode: 0o600 });
});

afterEach(() => {
  rmSync(join(conf, ".."), { recursive: true, force: true });
});

function edit(path: string, change: (doc: ReturnType<typeof parseDocument>) => void): void {
  const doc = parseDocument(readFileSync(path, "utf8"));
  change(doc);
  writeFileSync(path, String(doc));
}

async function configErrorOf(load: Promise<unknown>): Promise<string> {
  const error = await load.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).message;
}

function powerOf(config: PharosConfig, resourceId: string) {
  const host = inventoryHostByResource(config.inventory, resourceId);
  if (!host) throw new Error(`no host ${resourceId}`);
  return powerFor(config, host);
}

/** The lab's BMC user and password, and host 52 on IPMI at its own address. */
function ipmiLab(): void {
  edit(pharos, (doc) =>
    doc.setIn(["power", "ipmi"], { user: "laas", password: { file: "secrets/bmc-password" } }),
  );
  edit(inventory, (doc) => {
    doc.setIn([52, "power", "type"], "ipmi");
    doc.setIn([52, "power", "ipmi"], { address: "10.10.1.52", cipher_suite: 17 });
  });
}

describe("IPMI power settings", () => {
  it("merge the host's BMC fields over the lab's over the defaults; SSH stays the default", async () => {
    ipmiLab();
    const config = await loadPharosConfig(pharos);
    const power = powerOf(config, "52");
    expect(power?.type).toBe("ipmi");
    expect(power?.ipmi).toMatchObject({
      address: "10.10.1.52",
      port: 623,
      user: "laas",
      cipherSuite: 17,
      efiBoot: false,
      timeoutSeconds: 60,
    });
    expect(power?.ipmi?.password.reveal()).toBe("bmc-Secret-1");
    // The host's SSH login after imaging is kept beside its BMC.
    expect(power?.port).toBe(2222);
    const other = powerOf(config, "50");
    expect(other?.type).toBe("ssh");
    expect(other?.ipmi).toBeNull();
  });

  it("a host on IPMI without an address, user or password does not load, naming the field", async () => {
    ipmiLab();
    edit(inventory, (doc) => doc.deleteIn([52, "power", "ipmi", "address"]));
    edit(pharos, (doc) => doc.deleteIn(["power", "ipmi", "password"]));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${inventory}: 52.power.ipmi.address: required: the host's power is ipmi\n` +
        `${inventory}: 52.power.ipmi.password: required: the host's power is ipmi`,
    );
  });

  it("needs the relay that runs ipmitool", async () => {
    ipmiLab();
    edit(pharos, (doc) => doc.delete("relay"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toContain(
      "52.power.type: ipmi needs a relay (pharos.yaml relay:) to run ipmitool on",
    );
    edit(pharos, (doc) => doc.setIn(["power", "type"], "ipmi"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toContain(
      `${pharos}: relay: required by power.type ipmi: ipmitool runs on the relay`,
    );
  });

  it("refuses a password ipmitool would cut, without showing it", async () => {
    ipmiLab();
    const long = "abcdefghij-klmnopqrst-uv";
    writeFileSync(join(conf, "secrets", "bmc-password"), `${long}\n`);
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toMatch(
      /power\.ipmi\.password: is longer than 20 characters \(.*bmc-password\)/,
    );
    expect(message).not.toContain(long);
  });

  it("refuses a password with a tab, where ipmitool's reader would stop", async () => {
    ipmiLab();
    writeFileSync(join(conf, "secrets", "bmc-password"), "half\tsecret\n");
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toMatch(/power\.ipmi\.password: holds a line break or a tab/);
    expect(message).not.toContain("secret\n");
  });

  it("powerFor refuses a hand-built config whose IPMI host lacks its BMC", async () => {
    const config = await loadPharosConfig(pharos);
    const host = {
      resourceId: "60",
      name: "fog-pod-60",
      address: null,
      power: { type: "ipmi" as const },
    };
    expect(() => powerFor(config, host)).toThrow(
      /inventory host 60 \(fog-pod-60\): power\.ipmi: address, user, password required/,
    );
  });

  it("reads the cipher suite and the type strictly", async () => {
    ipmiLab();
    edit(inventory, (doc) => doc.setIn([52, "power", "ipmi", "cipher_suite"], 18));
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(
      /52\.power\.ipmi\.cipher_suite: expected an IPMI cipher suite \(0-17\)/,
    );
    edit(inventory, (doc) => doc.setIn([52, "power", "ipmi", "cipher_suite"], 3));
    edit(inventory, (doc) => doc.setIn([52, "power", "type"], "redfish"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(
      /52\.power\.type: expected "ssh" or "ipmi"/,
    );
  });
});
