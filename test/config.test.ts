import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import {
  installerConfigFor,
  inventoryHostByName,
  inventoryHostByResource,
  loadInstallerConfig,
  loadPharosConfig,
  powerFor,
} from "../lib/config/load";
import { ConfigError } from "../lib/errors";

const REPO = resolve(import.meta.dirname, "..");
const SHIPPED = join(REPO, "conf", "pharos.yaml");

const secretFile = (name: string) =>
  readFileSync(join(REPO, "conf", "secrets", name), "utf8").trimEnd();

/** Every example secret value shipped in conf/secrets, none of which may appear in a message. */
const SHIPPED_SECRETS = [
  "dashboard-token",
  "fog-api-key",
  "fog-user-key",
  "ldap-pass",
  "power_id_ed25519",
  "relay_id_ed25519",
  "handover-key",
].map(secretFile);

/** Awaits a load that must fail with a ConfigError; answers its message. */
async function configErrorOf(load: Promise<unknown>): Promise<string> {
  const error = await load.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  const message = (error as ConfigError).message;
  for (const secret of SHIPPED_SECRETS) expect(message).not.toContain(secret);
  return message;
}

describe("the shipped configuration", () => {
  it("loads completely: every installer, inventory, vpn, networks and domains", async () => {
    const config = await loadPharosConfig(SHIPPED);
    const conf = (name: string) => join(REPO, "conf", name);

    expect(config.file).toBe(SHIPPED);
    expect(config.dashboard).toBe("http://127.0.0.1:8000");
    expect(config.token.reveal()).toBe(secretFile("dashboard-token"));
    expect(config.database).toBe(join(REPO, "var", "laas"));
    expect(config.loggingDir).toBe(join(REPO, "var", "log"));
    expect(config.polling).toBe(0.1);
    expect(config.relay).toMatchObject({
      host: "127.0.0.1",
      port: 22,
      user: "laas",
      hostKey: "SHA256:QMehFWXcf+p0qtDu8CEVCj8SnJ/Rt/7uG44MPl9W4Bs",
      timeoutSeconds: 30,
      hostIdentity: "neighbour",
    });
    expect(config.labSubnets).toEqual(["127.0.0.0/8"]);
    // The shipped configs read a lease file, which only the DHCP daemon writes.
    for (const installer of config.defaultConfigs.values()) {
      expect(installer).toMatchObject({
        dhcpLog: "/var/lib/misc/dnsmasq.leases",
        dhcpLogFormat: "dnsmasq-leases",
      });
    }
    expect(config.relay?.key.reveal()).toBe(secretFile("relay_id_ed25519"));
    expect(config.power).toMatchObject({
      type: "ssh",
      user: "root",
      port: 22,
      hostKey: null,
      timeoutSeconds: 30,
    });
    expect(config.power?.key.reveal()).toBe(secretFile("power_id_ed25519"));
    expect(config.power?.key.reveal()).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);

    expect([...config.defaultConfigs.keys()]).toEqual(["Fuel", "Joid", "Compass", null]);
    const images = [...config.defaultConfigs].map(([name, c]) => [
      name,
      c.installer,
      c.fog.imageId,
    ]);
    expect(images).toEqual([
      ["Fuel", "Fuel", 2],
      ["Joid", "Joid", 3],
      ["Compass", "Compass", 4],
      [null, null, 1],
    ]);
    expect(config.cleanConfig).toBe(config.defaultConfigs.get(null));
    expect(config.cleanConfig.file).toBe(conf("none.yaml"));

    const fuel = config.defaultConfigs.get("Fuel")!;
    expect(fuel).toMatchObject({
      file: conf("fuel.yaml"),
      database: join(REPO, "var", "laas"),
      dhcpLog: "/var/lib/misc/dnsmasq.leases",
      dhcpServer: null,
      loggingDir: join(REPO, "var", "log"),
      scenario: "os-nosdn-nofeature-ha",
    });
    expect(fuel.fog).toMatchObject({
      server: "http://127.0.0.1:8080/fog/",
      imageId: 2,
      pollSeconds: 15,
      imagingTimeoutSeconds: 3600,
      requestTimeoutSeconds: 30,
    });
    expect(fuel.fog.apiKey.reveal()).toBe(secretFile("fog-api-key"));
    expect(fuel.fog.userKey.reveal()).toBe(secretFile("fog-user-key"));

    const { networks, vms } = fuel.hypervisor;
    expect(networks.file).toBe(conf("network.yaml"));
    expect(networks.template).toBe(join(REPO, "templates", "libvirt", "network.xml.njk"));
    expect(networks.networks.map((n) => n.name)).toEqual(["admin", "public", "management"]);
    expect(networks.networks[1]).toEqual({
      name: "public",
      brName: "br-public",
      brAddr: "172.30.9.1",
      cidr: "172.30.9.0/24",
      netmask: "255.255.255.0",
      dhcp: { used: true, rangeStart: "172.30.9.100", rangeEnd: "172.30.9.200" },
      forward: { used: true, type: "nat" },
    });
    expect(networks.networks[2]?.forward).toEqual({ used: false, type: null });
    expect(vms.template).toBe(join(REPO, "templates", "libvirt", "domain.xml.njk"));
    expect(vms.domains.map((d) => d.name)).toEqual(["jumphost", "node1"]);
    expect(vms.domains[0]).toEqual({
      name: "jumphost",
      disk: "/var/lib/libvirt/images/jumphost.qcow2",
      memory: 8388608,
      vcpus: 4,
      interfaces: [
        { name: "admin", type: "network" },
        { name: "public", type: "network" },
      ],
      iso: {
        used: true,
        url: "http://127.0.0.1:8080/iso/opnfv.iso",
        location: "/var/lib/libvirt/images/opnfv.iso",
        sha256: null,
      },
    });
    expect(vms.domains[1]?.iso).toEqual({ used: false, url: null, location: null, sha256: null });

    expect(fuel.vpn).toMatchObject({
      file: conf("vpn.yaml"),
      server: "127.0.0.1",
      authentication: { user: "cn=admin,dc=example,dc=org" },
      directory: { root: "dc=example,dc=org", user: "ou=People" },
      user: { objects: ["top", "inetOrgPerson"] },
      database: join(REPO, "var", "laas"),
      permanentUsers: ["admin"],
    });
    expect(fuel.vpn.authentication.pass.reveal()).toBe(secretFile("ldap-pass"));

    // Files named by several configs are loaded once and shared.
    expect(fuel.inventory).toBe(config.inventory);
    expect(config.defaultConfigs.get("Joid")?.vpn).toBe(fuel.vpn);
  });

  it("never shows a secret when printed", async () => {
    const config = await loadPharosConfig(SHIPPED);
    const printed = JSON.stringify(config, (_k, v: unknown) =>
      v instanceof Map ? Object.fromEntries(v) : v,
    );
    expect(printed).toContain("[secret]");
    for (const secret of SHIPPED_SECRETS) expect(printed).not.toContain(secret);
  });

  it("holds the inventory in both forms", async () => {
    const { inventory } = await loadPharosConfig(SHIPPED);
    expect(inventory.file).toBe(join(REPO, "conf", "inventory.yaml"));
    expect(inventory.hosts).toEqual([
      { resourceId: "50", name: "fog-machine-4", address: null, power: null },
      { resourceId: "51", name: "fog-machine-5", address: null, power: null },
      {
        resourceId: "52",
        name: "fog-pod-52",
        address: "127.0.0.1",
        power: { port: 2222, hostKey: null },
      },
    ]);
    expect(inventoryHostByResource(inventory, "51")?.name).toBe("fog-machine-5");
    expect(inventoryHostByResource(inventory, 52)?.name).toBe("fog-pod-52");
    expect(inventoryHostByResource(inventory, "99")).toBeNull();
    expect(inventoryHostByName(inventory, "fog-machine-4")?.resourceId).toBe("50");
    expect(inventoryHostByName(inventory, "FOG-MACHINE-4")?.resourceId).toBe("50");
    expect(inventoryHostByName(inventory, "nope")).toBeNull();
  });

  it("merges per-host power over the lab default", async () => {
    const config = await loadPharosConfig(SHIPPED);
    const plain = powerFor(config, inventoryHostByResource(config.inventory, "50")!);
    expect(plain).toMatchObject({ user: "root", port: 22, timeoutSeconds: 30, hostKey: null });
    expect(plain?.key).toBe(config.power?.key);
    const own = powerFor(config, inventoryHostByResource(config.inventory, "52")!);
    expect(own).toMatchObject({ user: "root", port: 2222, timeoutSeconds: 30 });
    expect(own?.key).toBe(config.power?.key);
  });

  it("finds installer configs without regard to case, and the no-installer config", async () => {
    const config = await loadPharosConfig(SHIPPED);
    const fuel = config.defaultConfigs.get("Fuel");
    for (const name of ["Fuel", "fuel", "FUEL", " fuel "]) {
      expect(installerConfigFor(config, name)).toBe(fuel);
    }
    for (const name of [null, "", "None", "none", "NONE"]) {
      expect(installerConfigFor(config, name)).toBe(config.cleanConfig);
    }
  });

  it("names the installer and the known ones when an installer is unknown", async () => {
    const config = await loadPharosConfig(SHIPPED);
    expect(() => installerConfigFor(config, "Apex")).toThrow(ConfigError);
    expect(() => installerConfigFor(config, "Apex")).toThrow(
      /conf\/pharos\.yaml: default_configs: no config for installer "Apex"; known: Fuel, Joid, Compass, null/,
    );
  });

  it("loads one installer config on its own", async () => {
    const fuel = await loadInstallerConfig(join(REPO, "conf", "fuel.yaml"));
    expect(fuel.installer).toBe("Fuel");
    expect(fuel.fog.imageId).toBe(2);
    expect(fuel.inventory.hosts).toHaveLength(3);
    const none = await loadInstallerConfig(join(REPO, "conf", "none.yaml"));
    expect(none.installer).toBeNull();
    expect(none.scenario).toBeNull();
  });
});

describe("a broken configuration", () => {
  let root: string;
  let conf: string;
  let pharos: string;
  const cwd = process.cwd();

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "laas-config-"));
    conf = join(root, "conf");
    pharos = join(conf, "pharos.yaml");
    cpSync(join(REPO, "conf"), conf, { recursive: true });
    cpSync(join(REPO, "templates"), join(root, "templates"), { recursive: true });
  });

  afterEach(() => {
    process.chdir(cwd);
    rmSync(root, { recursive: true, force: true });
  });

  const file = (name: string) => join(conf, name);

  /** Edits one YAML file of the copy through yaml's Document API (comments survive). */
  function edit(name: string, change: (doc: ReturnType<typeof parseDocument>) => void): void {
    const doc = parseDocument(readFileSync(file(name), "utf8"));
    change(doc);
    writeFileSync(file(name), String(doc));
  }

  function replaceText(name: string, from: string, to: string): void {
    const text = readFileSync(file(name), "utf8");
    expect(text).toContain(from);
    writeFileSync(file(name), text.replace(from, to));
  }

  it("holds the watcher's interval and the waits' deadlines to what the workflows allow", async () => {
    // The default: the smallest fog.poll_interval of the installers.
    edit("joid.yaml", (doc) => doc.setIn(["fog", "poll_interval"], 7));
    expect((await loadPharosConfig(pharos)).watchSeconds).toBe(7);
    edit("pharos.yaml", (doc) => doc.set("watch_interval", 30));
    expect((await loadPharosConfig(pharos)).watchSeconds).toBe(30);
    // Heartbeats are 600 s: the watcher must come by at least three times within one.
    edit("pharos.yaml", (doc) => doc.set("watch_interval", 201));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: watch_interval: expected at most 200 seconds (a third of the waits' HeartbeatSeconds), got 201`,
    );
    edit("pharos.yaml", (doc) => doc.delete("watch_interval"));
    for (const installer of ["fuel.yaml", "joid.yaml", "compass.yaml", "none.yaml"]) {
      edit(installer, (doc) => doc.setIn(["fog", "poll_interval"], 900));
    }
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(
      /pharos\.yaml: watch_interval: required: the installers' smallest fog\.poll_interval is 900 s, over the watcher's longest interval, 200 s/,
    );
    // Deadlines stay under their wait state's TimeoutSeconds.
    edit("fuel.yaml", (doc) => doc.setIn(["fog", "imaging_timeout"], 43_201));
    edit("pharos.yaml", (doc) => doc.set("watch_interval", 15));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${file("fuel.yaml")}: fog.imaging_timeout: expected at most 43200 seconds (the AwaitImaging state's TimeoutSeconds), got 43201`,
    );
  });

  it("requires the lab's subnets with power or relay, and knows the lease and identity choices", async () => {
    edit("pharos.yaml", (doc) => doc.delete("lab_subnets"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: lab_subnets: required when power or relay is set: the subnets (CIDRs) lab hosts live on; no address outside them is reached`,
    );
    edit("pharos.yaml", (doc) => {
      doc.delete("power");
      doc.delete("relay");
    });
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: lab_subnets: required when a host has power settings (fog-pod-52 in the inventory): the subnets (CIDRs) lab hosts live on`,
    );
    edit("inventory.yaml", (doc) => doc.deleteIn([52, "power"]));
    expect((await loadPharosConfig(pharos)).labSubnets).toEqual([]);
    edit("pharos.yaml", (doc) => doc.set("lab_subnets", ["10.10.0.0/33"]));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: lab_subnets[0]: expected an IPv4 CIDR such as 10.10.0.0/24, got "10.10.0.0/33"`,
    );
    edit("pharos.yaml", (doc) => doc.set("lab_subnets", []));
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(
      /lab_subnets: expected at least one IPv4 CIDR/,
    );
    edit("pharos.yaml", (doc) => doc.set("lab_subnets", ["10.10.0.0/24"]));
    edit("fuel.yaml", (doc) => doc.set("dhcp_log_format", "leases"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(
      /fuel\.yaml: dhcp_log_format: expected "dhcpd-leases", "dnsmasq-leases", "syslog"/,
    );
    edit("fuel.yaml", (doc) => doc.delete("dhcp_log_format"));
    expect((await loadPharosConfig(pharos)).defaultConfigs.get("Fuel")?.dhcpLogFormat).toBe(
      "syslog",
    );
  });

  it("knows how a first host key may be trusted", async () => {
    edit("pharos.yaml", (doc) => doc.setIn(["relay", "host_identity"], "tofu"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(
      /relay\.host_identity: expected "neighbour", "pinned", "trust-first-key"/,
    );
    edit("pharos.yaml", (doc) => doc.deleteIn(["relay", "host_identity"]));
    expect((await loadPharosConfig(pharos)).relay?.hostIdentity).toBe("neighbour");
  });

  it("names file and field of a missing field", async () => {
    edit("fuel.yaml", (doc) => doc.deleteIn(["fog", "image_id"]));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toBe(`${file("fuel.yaml")}: fog.image_id: required`);
  });

  it("requires the relay's pinned host key, and the DHCP server's when one is named", async () => {
    edit("pharos.yaml", (doc) => doc.deleteIn(["relay", "host_key"]));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${file("pharos.yaml")}: relay.host_key: required`,
    );
    edit("pharos.yaml", (doc) => doc.setIn(["relay", "host_key"], "yes"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(
      /relay\.host_key: expected an OpenSSH fingerprint/,
    );
    edit("pharos.yaml", (doc) =>
      doc.setIn(["relay", "host_key"], "SHA256:QMehFWXcf+p0qtDu8CEVCj8SnJ/Rt/7uG44MPl9W4Bs"),
    );
    edit("joid.yaml", (doc) => doc.set("dhcp_server", "10.1.0.2"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(
      /joid\.yaml: dhcp_server_host_key: required when dhcp_server is set/,
    );
  });

  it("loads the hand-over and directory settings with their defaults", async () => {
    const config = await loadPharosConfig(pharos);
    expect(config.handover).toMatchObject({
      vpn: true,
      rootPassword: true,
      sshKey: true,
      dashboardNotes: true,
      sweepSeconds: 3600,
      email: {
        host: "127.0.0.1",
        port: 25,
        security: "starttls",
        user: null,
        pass: null,
        caPem: null,
        from: "LaaS <laas@lab.example.org>",
        operators: ["lab-ops@lab.example.org"],
        timeoutSeconds: 30,
      },
    });
    expect(config.handover?.sealingKey.reveal()).toBe(secretFile("handover-key"));
    expect(config.cleanConfig.vpn.ldap).toEqual({
      url: "ldap://127.0.0.1:389",
      startTls: true,
      caPem: null,
      verifyCertificate: true,
      timeoutSeconds: 10,
    });
    // Without an ldap section the directory is the VPN server, with StartTLS.
    edit("vpn.yaml", (doc) => doc.delete("ldap"));
    const plain = await loadPharosConfig(pharos);
    expect(plain.cleanConfig.vpn.ldap).toMatchObject({ url: "ldap://127.0.0.1", startTls: true });
    // An SMTP server on 465 by default when TLS starts at once.
    edit("pharos.yaml", (doc) => {
      doc.deleteIn(["handover", "email", "port"]);
      doc.setIn(["handover", "email", "security"], "tls");
    });
    expect((await loadPharosConfig(pharos)).handover?.email.port).toBe(465);
    // No handover section: no access stage at all.
    edit("pharos.yaml", (doc) => doc.delete("handover"));
    expect((await loadPharosConfig(pharos)).handover).toBeNull();
  });

  it("refuses a sealing key that is not 32 bytes, without quoting it", async () => {
    writeFileSync(file("secrets/handover-key"), "too-short-to-seal-anything\n");
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toBe(
      `${file("pharos.yaml")}: handover.sealing_key: must be 32 bytes as base64 (openssl rand -base64 32) or 64 hex digits (${file("secrets/handover-key")})`,
    );
    expect(message).not.toContain("too-short");
    writeFileSync(file("secrets/handover-key"), `${"ab".repeat(32)}\n`);
    await expect(loadPharosConfig(pharos)).resolves.toBeTruthy();
  });

  it("reads the end notice's settings, by default two days before bookings of three days or more", async () => {
    expect((await loadPharosConfig(pharos)).handover?.endNotice).toEqual({
      beforeHours: 48,
      minBookingHours: 72,
    });
    edit("pharos.yaml", (doc) => doc.setIn(["handover", "end_notice"], { before_hours: 12 }));
    expect((await loadPharosConfig(pharos)).handover?.endNotice).toEqual({
      beforeHours: 12,
      minBookingHours: 36,
    });
    edit("pharos.yaml", (doc) =>
      doc.setIn(["handover", "end_notice"], { before_hours: 0.5, min_booking_hours: 2 }),
    );
    expect((await loadPharosConfig(pharos)).handover?.endNotice).toEqual({
      beforeHours: 0.5,
      minBookingHours: 2,
    });
    edit("pharos.yaml", (doc) => doc.setIn(["handover", "end_notice"], false));
    expect((await loadPharosConfig(pharos)).handover?.endNotice).toBeNull();
    edit("pharos.yaml", (doc) =>
      doc.setIn(["handover", "end_notice"], { before_hours: 48, min_booking_hours: 24 }),
    );
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${file("pharos.yaml")}: handover.end_notice.min_booking_hours: 24 is below before_hours (48): a booking between the two would be told of its end as soon as it is handed over; make it at least 48`,
    );
    const refused = async (value: unknown) => {
      edit("pharos.yaml", (doc) => doc.setIn(["handover", "end_notice"], value));
      return configErrorOf(loadPharosConfig(pharos));
    };
    expect(await refused({ before_hours: -1 })).toBe(
      `${file("pharos.yaml")}: handover.end_notice.before_hours: expected a positive number, got -1`,
    );
    expect(await refused({ before: 48 })).toBe(
      `${file("pharos.yaml")}: handover.end_notice: unknown field "before"`,
    );
    expect(await refused("yes")).toBe(
      `${file("pharos.yaml")}: handover.end_notice: expected true, false or a mapping {before_hours, min_booking_hours}, got "yes"`,
    );
  });

  it("checks the directory and mail settings", async () => {
    edit("vpn.yaml", (doc) => doc.setIn(["ldap", "url"], "ldaps://127.0.0.1:636"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${file("vpn.yaml")}: ldap.start_tls: ldaps:// is TLS from the start; StartTLS applies to ldap:// only`,
    );
    edit("vpn.yaml", (doc) => {
      doc.setIn(["ldap", "url"], "http://127.0.0.1");
      doc.setIn(["ldap", "ca"], "./no-such-ca.pem");
    });
    const both = await configErrorOf(loadPharosConfig(pharos));
    expect(both).toContain("ldap.url: expected an ldap:// or ldaps:// URL");
    edit("vpn.yaml", (doc) => doc.setIn(["ldap", "url"], "ldap://127.0.0.1"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${file("vpn.yaml")}: ldap.ca: cannot read ${file("no-such-ca.pem")} (ENOENT)`,
    );
    writeFileSync(file("no-such-ca.pem"), "not a certificate\n");
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${file("vpn.yaml")}: ldap.ca: ${file("no-such-ca.pem")} holds no PEM certificate`,
    );
    edit("vpn.yaml", (doc) => doc.deleteIn(["ldap", "ca"]));
    edit("pharos.yaml", (doc) => {
      doc.setIn(["handover", "email", "user"], "laas");
      doc.setIn(["handover", "email", "operators"], ["not an address"]);
    });
    const mail = await configErrorOf(loadPharosConfig(pharos));
    expect(mail).toBe(
      `${file("pharos.yaml")}: handover.email.operators[0]: expected an e-mail address, got "not an address"`,
    );
    edit("pharos.yaml", (doc) => doc.setIn(["handover", "email", "operators"], []));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${file("pharos.yaml")}: handover.email: user and pass go together`,
    );
  });

  it("names file, field and what was expected of a wrong type", async () => {
    edit("fuel.yaml", (doc) => doc.setIn(["fog", "image_id"], "five"));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toBe(
      `${file("fuel.yaml")}: fog.image_id: expected a positive integer, got "five"`,
    );
  });

  it("says which file a required pharos field is missing from", async () => {
    edit("pharos.yaml", (doc) => doc.delete("token"));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toBe(`${file("pharos.yaml")}: token: required`);
  });

  it("lists several issues of one file in one error", async () => {
    edit("network.yaml", (doc) => {
      doc.setIn(["networks", 0, "netmask"], "255.255.0.0");
      doc.setIn(["networks", 1, "dhcp", "rangeEnd"], "172.30.10.250");
      doc.setIn(["networks", 2, "brName"], "a-bridge-name-far-too-long");
    });
    const message = await configErrorOf(loadPharosConfig(pharos));
    const n = file("network.yaml");
    expect(message.split("\n")).toEqual([
      `${n}: networks[0].netmask: does not match cidr 10.20.0.0/24`,
      `${n}: networks[1].dhcp.rangeEnd: is outside cidr 172.30.9.0/24`,
      `${n}: networks[2].brName: expected a bridge name (up to 15 letters, digits, '.', '_', '-'), got "a-bridge-name-far-too-long"`,
    ]);
  });

  it("refuses unknown fields, naming them", async () => {
    edit("fuel.yaml", (doc) => doc.setIn(["fog", "imageid"], 2));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toBe(`${file("fuel.yaml")}: fog: unknown field "imageid"`);
  });

  it("names the file and line of a YAML syntax error, without quoting the line", async () => {
    const lines = readFileSync(file("fuel.yaml"), "utf8").split("\n");
    const line = lines.findIndex((l) => l.startsWith("installer:")) + 1;
    replaceText("fuel.yaml", "installer: Fuel", "installer: Fuel: broken");
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toMatch(
      new RegExp(`^${file("fuel.yaml")}: line ${line}, column \\d+: invalid YAML: `),
    );
    expect(message).not.toContain("broken");
  });

  it("names the referring file and field when a referenced file cannot be read", async () => {
    edit("fuel.yaml", (doc) => doc.setIn(["hypervisor_config", "networks"], "nets/missing.yaml"));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toBe(
      `${file("fuel.yaml")}: hypervisor_config.networks: cannot read ${join(conf, "nets", "missing.yaml")} (ENOENT)`,
    );
  });

  it("names the template of a networks file that cannot be read", async () => {
    edit("network.yaml", (doc) => doc.set("jinja-template", "../templates/missing.njk"));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toBe(
      `${file("network.yaml")}: jinja-template: cannot read ${join(root, "templates", "missing.njk")} (ENOENT)`,
    );
  });

  it("requires the no-installer entry in default_configs", async () => {
    edit("pharos.yaml", (doc) => doc.deleteIn(["default_configs", null]));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toMatch(/pharos\.yaml: default_configs: needs an entry for no installer/);
  });

  it("accepts `none` as the no-installer key", async () => {
    replaceText("pharos.yaml", "null: none.yaml", "None: none.yaml");
    const config = await loadPharosConfig(pharos);
    expect(config.cleanConfig.file).toBe(file("none.yaml"));
    expect(config.defaultConfigs.has(null)).toBe(true);
  });

  it("refuses an installer config filed under another installer's name", async () => {
    edit("pharos.yaml", (doc) => doc.setIn(["default_configs", "Joid"], "compass.yaml"));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toBe(
      `${file("pharos.yaml")}: default_configs.Joid: ${file("compass.yaml")} is the config of installer "Compass"`,
    );
  });

  it("refuses a domain interface on a network the installer does not define", async () => {
    edit("domain.yaml", (doc) => doc.setIn(["domains", 0, "interfaces", 1, "name"], "publik"));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toContain(`${file("fuel.yaml")}: hypervisor_config: `);
    expect(message).toContain("domains[0].interfaces[1]: network publik is not defined");
  });

  describe("secrets", () => {
    it("names field and path of a missing secret file, without the secret", async () => {
      edit("pharos.yaml", (doc) => doc.set("token", "./secrets/missing-token"));
      const message = await configErrorOf(loadPharosConfig(pharos));
      expect(message).toBe(
        `${file("pharos.yaml")}: token: cannot read secret file ${join(conf, "secrets", "missing-token")} (ENOENT)`,
      );
    });

    it("names field and path of a secret path that is a directory", async () => {
      mkdirSync(join(conf, "secrets", "a-directory"));
      edit("vpn.yaml", (doc) => doc.setIn(["authentication", "pass"], "./secrets/a-directory"));
      const message = await configErrorOf(loadPharosConfig(pharos));
      expect(message).toBe(
        `${file("vpn.yaml")}: authentication.pass: cannot read secret file ${join(conf, "secrets", "a-directory")} (EISDIR)`,
      );
    });

    it("names the field of a missing {file: path} secret", async () => {
      edit("fuel.yaml", (doc) => doc.setIn(["fog", "user_key"], doc.createNode({ file: "gone" })));
      const message = await configErrorOf(loadPharosConfig(pharos));
      expect(message).toBe(
        `${file("fuel.yaml")}: fog.user_key: cannot read secret file ${join(conf, "gone")} (ENOENT)`,
      );
    });

    it("never echoes an inline secret of the wrong type", async () => {
      edit("pharos.yaml", (doc) => doc.set("token", 987654321));
      const message = await configErrorOf(loadPharosConfig(pharos));
      expect(message).toBe(`${file("pharos.yaml")}: token: expected a string or {file: path}`);
      expect(message).not.toContain("987654321");
    });

    it("never echoes a power key that is not a private key", async () => {
      edit("pharos.yaml", (doc) => doc.setIn(["power", "key"], "not-a-key-but-a-secret"));
      const message = await configErrorOf(loadPharosConfig(pharos));
      expect(message).toBe(
        `${file("pharos.yaml")}: power.key: is not an OpenSSH or PEM private key`,
      );
      expect(message).not.toContain("not-a-key-but-a-secret");
    });

    it("refuses a public key as the power key", async () => {
      edit("pharos.yaml", (doc) => doc.setIn(["power", "key"], "./secrets/power_id_ed25519.pub"));
      const message = await configErrorOf(loadPharosConfig(pharos));
      expect(message).toMatch(/pharos\.yaml: power\.key: is a public key/);
    });

    it("takes inline values, paths, bare file names and {file: path}", async () => {
      writeFileSync(join(conf, "secrets", "spaced"), "value-with-trailing-space \n\n");
      edit("pharos.yaml", (doc) => doc.set("token", "inline-token-value"));
      edit("fuel.yaml", (doc) => {
        doc.setIn(["fog", "api_key"], "secrets/spaced");
        doc.setIn(["fog", "user_key"], doc.createNode({ file: "secrets/fog-user-key" }));
      });
      edit("joid.yaml", (doc) => {
        doc.setIn(["fog", "api_key"], "file:secrets/fog-api-key");
        doc.setIn(["fog", "user_key"], "fog-user-key-inline");
      });
      edit("vpn.yaml", (doc) =>
        doc.setIn(["authentication", "pass"], join(conf, "secrets", "ldap-pass")),
      );

      const config = await loadPharosConfig(pharos);
      expect(config.token.reveal()).toBe("inline-token-value");
      expect(config.token.source).toBe("inline");
      const fuel = installerConfigFor(config, "fuel");
      expect(fuel.fog.apiKey.reveal()).toBe("value-with-trailing-space");
      expect(fuel.fog.apiKey.source).toBe(join(conf, "secrets", "spaced"));
      expect(fuel.fog.userKey.reveal()).toBe(secretFile("fog-user-key"));
      const joid = installerConfigFor(config, "joid");
      expect(joid.fog.apiKey.reveal()).toBe(secretFile("fog-api-key"));
      // A bare value that names no file and does not look like a path is the value itself.
      expect(joid.fog.userKey.reveal()).toBe("fog-user-key-inline");
      expect(joid.fog.userKey.source).toBe("inline");
      expect(fuel.vpn.authentication.pass.reveal()).toBe(secretFile("ldap-pass"));
    });

    it("takes the power key inline", async () => {
      edit("pharos.yaml", (doc) =>
        doc.setIn(["power", "key"], `${secretFile("power_id_ed25519")}\n`),
      );
      const config = await loadPharosConfig(pharos);
      expect(config.power?.key.source).toBe("inline");
      expect(config.power?.key.reveal()).toContain("BEGIN OPENSSH PRIVATE KEY");
    });
  });

  it("resolves relative paths against the config file's directory, whatever the cwd", async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), "laas-cwd-"));
    try {
      process.chdir(elsewhere);
      const config = await loadPharosConfig(pharos);
      expect(config.database).toBe(join(root, "var", "laas"));
      expect(config.inventory.file).toBe(file("inventory.yaml"));
      expect(config.cleanConfig.hypervisor.networks.template).toBe(
        join(root, "templates", "libvirt", "network.xml.njk"),
      );
      expect(config.token.source).toBe(join(conf, "secrets", "dashboard-token"));

      process.chdir(root);
      const relative = await loadPharosConfig("conf/pharos.yaml");
      expect(relative.file).toBe(pharos);
      expect(relative.loggingDir).toBe(join(root, "var", "log"));
    } finally {
      process.chdir(cwd);
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it("names the file relative to the working directory when below it", async () => {
    process.chdir(root);
    edit("fuel.yaml", (doc) => doc.setIn(["fog", "image_id"], 0));
    const message = await configErrorOf(loadPharosConfig("conf/pharos.yaml"));
    expect(message).toBe("conf/fuel.yaml: fog.image_id: expected a positive integer, got 0");
  });

  it("accepts the seed's spelling `poling`, but not both spellings", async () => {
    replaceText("pharos.yaml", "polling: 0.1", "poling: 0.5");
    expect((await loadPharosConfig(pharos)).polling).toBe(0.5);
    replaceText("pharos.yaml", "poling: 0.5", "poling: 0.5\npolling: 0.2");
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toBe(`${file("pharos.yaml")}: poling: give either polling or poling, not both`);
  });

  it("refuses a polling rate that is not positive", async () => {
    edit("pharos.yaml", (doc) => doc.set("polling", 0));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toBe(`${file("pharos.yaml")}: polling: expected a positive number, got 0`);
  });

  it("accepts the seed's spelling `authenticaion`", async () => {
    replaceText("vpn.yaml", "authentication:", "authenticaion:");
    const config = await loadPharosConfig(pharos);
    expect(config.cleanConfig.vpn.authentication.user).toBe("cn=admin,dc=example,dc=org");
  });

  it("requires a power key on hosts with power settings when there is no lab default", async () => {
    edit("pharos.yaml", (doc) => doc.delete("power"));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toMatch(/inventory\.yaml: 52\.power\.key: required: .*has no lab-wide power/);

    edit("inventory.yaml", (doc) => doc.setIn([52, "power", "key"], "./secrets/power_id_ed25519"));
    const config = await loadPharosConfig(pharos);
    expect(config.power).toBeNull();
    expect(powerFor(config, inventoryHostByResource(config.inventory, "50")!)).toBeNull();
    const own = powerFor(config, inventoryHostByResource(config.inventory, "52")!);
    expect(own).toMatchObject({ type: "ssh", user: "root", port: 2222, timeoutSeconds: 30 });
    expect(own?.key.reveal()).toBe(secretFile("power_id_ed25519"));
  });

  it("refuses an inventory entry of the wrong shape, and a FOG host named twice", async () => {
    edit("inventory.yaml", (doc) => {
      doc.set(51, doc.createNode(["fog-machine-5"]));
      doc.set(53, "fog-machine-4");
    });
    const message = await configErrorOf(loadPharosConfig(pharos));
    const inv = file("inventory.yaml");
    expect(message.split("\n")).toEqual([
      `${inv}: 51: expected a FOG host name or a mapping {name, address, power}, got a list`,
    ]);
    edit("inventory.yaml", (doc) => doc.set(51, "fog-machine-5"));
    const twice = await configErrorOf(loadPharosConfig(pharos));
    expect(twice).toBe(`${inv}: 53.name: FOG host fog-machine-4 is already resource 50`);
  });
});
