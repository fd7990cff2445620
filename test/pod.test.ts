import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPharosConfig } from "../lib/config/load";
import type {
  DomainDefinition,
  DomainFile,
  InstallerConfig,
  NetworkDefinition,
  NetworkFile,
  PharosConfig,
} from "../lib/config/types";
import { ConfigError, ProtocolError } from "../lib/errors";
import { macsBySource, parseDomiflist } from "../lib/pod/domiflist";
import { buildPlan, POD_TIMEOUTS, removalPlan, teardownPlan } from "../lib/pod/plan";
import { renderDomainXml, renderNetworkXml } from "../lib/pod/render";
import type { RemoteCommand } from "../lib/ports/relay";
import {
  describeRan,
  ensureLibvirtTools,
  run,
  TEST_URI,
  validateXml,
  virsh,
  xpath,
} from "./helpers/virsh";

const REPO = resolve(import.meta.dirname, "..");
const NETWORK_TEMPLATE = join(REPO, "templates", "libvirt", "network.xml.njk");
const DOMAIN_TEMPLATE = join(REPO, "templates", "libvirt", "domain.xml.njk");

let pharos: PharosConfig;
let fuel: InstallerConfig;
let work: string;

beforeAll(async () => {
  ensureLibvirtTools();
  pharos = await loadPharosConfig(join(REPO, "conf", "pharos.yaml"));
  fuel = pharos.defaultConfigs.get("Fuel")!;
  work = mkdtempSync(join(tmpdir(), "laas-pod-"));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

let fileCount = 0;
function xmlFile(xml: string): string {
  const file = join(work, `doc-${++fileCount}.xml`);
  writeFileSync(file, xml);
  return file;
}

function installerConfigs(): InstallerConfig[] {
  return [...new Set(pharos.defaultConfigs.values())];
}

describe("the shipped templates and conf/", () => {
  it("render every network to XML that libvirt's schema and virsh accept", async () => {
    let checked = 0;
    for (const config of installerConfigs()) {
      const file = config.hypervisor.networks;
      for (const network of file.networks) {
        const xml = xmlFile(renderNetworkXml(file, network));
        const valid = await validateXml(xml, "network");
        expect(valid.code, `${network.name}: ${describeRan(valid)}`).toBe(0);
        const defined = await virsh(["net-define", xml]);
        expect(defined.code, `${network.name}: ${describeRan(defined)}`).toBe(0);
        expect(await xpath(xml, "/network/name")).toBe(network.name);
        expect(await xpath(xml, "/network/bridge/@name")).toBe(network.brName);
        expect(await xpath(xml, "count(/network/forward)")).toBe(network.forward.used ? "1" : "0");
        expect(await xpath(xml, "count(/network/ip/dhcp/range)")).toBe(
          network.dhcp.used ? "1" : "0",
        );
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(3 * 4);
  });

  it("render every domain to XML that libvirt's schema and virsh accept, memory in KiB", async () => {
    let checked = 0;
    for (const config of installerConfigs()) {
      const file = config.hypervisor.vms;
      for (const domain of file.domains) {
        const xml = xmlFile(renderDomainXml(file, domain));
        const valid = await validateXml(xml, "domain");
        expect(valid.code, `${domain.name}: ${describeRan(valid)}`).toBe(0);
        const defined = await virsh(["define", xml]);
        expect(defined.code, `${domain.name}: ${describeRan(defined)}`).toBe(0);
        expect(await xpath(xml, "/domain/name")).toBe(domain.name);
        expect(await xpath(xml, "/domain/memory/@unit")).toBe("KiB");
        expect(await xpath(xml, "/domain/memory")).toBe(String(domain.memory));
        expect(await xpath(xml, "/domain/vcpu")).toBe(String(domain.vcpus));
        expect(await xpath(xml, "/domain/devices/disk[@device='disk']/source/@file")).toBe(
          domain.disk,
        );
        expect(await xpath(xml, "/domain/devices/disk[@device='cdrom']/source/@file")).toBe(
          domain.iso.used ? domain.iso.location : "",
        );
        expect(await xpath(xml, "count(/domain/devices/interface)")).toBe(
          String(domain.interfaces.length),
        );
        for (const [index, iface] of domain.interfaces.entries()) {
          const at = `/domain/devices/interface[${index + 1}]`;
          expect(await xpath(xml, `${at}/@type`)).toBe(iface.type);
          expect(await xpath(xml, `${at}/source/@${iface.type}`)).toBe(iface.name);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4 * 2);
  });

  it("libvirt itself reads the memory as KiB and gives every interface a MAC", async () => {
    // One virsh process, so the test driver still holds the domain when dumpxml and domiflist run.
    const file = fuel.hypervisor.vms;
    for (const domain of file.domains) {
      const xml = xmlFile(renderDomainXml(file, domain));
      const result = await virsh([
        `define ${xml}; dumpxml --domain ${domain.name}; domiflist --domain ${domain.name}`,
      ]);
      expect(result.code, describeRan(result)).toBe(0);
      expect(result.stdout).toContain(`<memory unit='KiB'>${domain.memory}</memory>`);
      const rows = parseDomiflist(result.stdout.slice(result.stdout.indexOf("</domain>")));
      expect(rows.map((row) => [row.type, row.source])).toEqual(
        domain.interfaces.map((iface) => [iface.type, iface.name]),
      );
      const macs = macsBySource(result.stdout.slice(result.stdout.indexOf("</domain>")));
      expect(Object.keys(macs)).toEqual(domain.interfaces.map((iface) => iface.name));
      for (const mac of Object.values(macs)) expect(mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    }
  });
});

/** Values that would do something if a shell or an XML parser ever read them as code. */
const MARKER = "pwned";
const ODD_VALUES: Record<string, string> = {
  spaces: "pod net one",
  quotes: `it's "quoted"`,
  markup: `a&b<c>d]]><!-- x --><evil attr="1">`,
  substitution: `$(touch ${MARKER})`,
  backticks: `\`touch ${MARKER}\``,
  semicolon: `x; touch ${MARKER}; echo`,
  unicode: "réseau-日本-✓",
  backslash: "a\\b\\'c",
  pipe: `x | touch ${MARKER} && echo &`,
};

function oddNetwork(name: string, index: number): NetworkDefinition {
  return {
    name,
    brName: `laasodd${index}`,
    brAddr: "10.99.0.1",
    cidr: "10.99.0.0/24",
    netmask: "255.255.255.0",
    dhcp: { used: true, rangeStart: "10.99.0.10", rangeEnd: "10.99.0.20" },
    forward: { used: true, type: "nat" },
  };
}

function oddDomain(name: string, pathPart: string): DomainDefinition {
  return {
    name,
    disk: `/var/lib/libvirt/images/${pathPart}.qcow2`,
    memory: 1048576,
    vcpus: 1,
    interfaces: [
      { name, type: "network" },
      { name: "br-ext", type: "bridge" },
    ],
    iso: {
      used: true,
      url: "http://127.0.0.1:8080/iso/x.iso",
      location: `/srv/iso/${pathPart}.iso`,
    },
  };
}

const networkFile = (networks: NetworkDefinition[]): NetworkFile => ({
  file: join(work, "network.yaml"),
  template: NETWORK_TEMPLATE,
  networks,
});
const domainFile = (domains: DomainDefinition[]): DomainFile => ({
  file: join(work, "domain.yaml"),
  template: DOMAIN_TEMPLATE,
  domains,
});

describe("odd names and paths", () => {
  it("stay text: the XML is valid, each value reads back unchanged, and libvirt defines it", async () => {
    const cwd = mkdtempSync(join(work, "odd-"));
    let index = 0;
    for (const [label, value] of Object.entries(ODD_VALUES)) {
      index++;
      const network = oddNetwork(value, index);
      const netXml = xmlFile(renderNetworkXml(networkFile([network]), network));
      expect((await validateXml(netXml, "network")).code, label).toBe(0);
      expect(await xpath(netXml, "/network/name"), label).toBe(value);
      const netDefined = await virsh(["net-define", netXml], { cwd });
      expect(netDefined.code, `${label}: ${describeRan(netDefined)}`).toBe(0);

      // The path part carries the odd value with an absolute marker too: paths may hold "/".
      const pathPart = `${value} $(touch ${join(cwd, MARKER)})`;
      const domain = oddDomain(value, pathPart);
      const domXml = xmlFile(renderDomainXml(domainFile([domain]), domain));
      const valid = await validateXml(domXml, "domain");
      expect(valid.code, `${label}: ${describeRan(valid)}`).toBe(0);
      expect(await xpath(domXml, "/domain/name"), label).toBe(value);
      expect(await xpath(domXml, "/domain/devices/interface[1]/source/@network"), label).toBe(
        value,
      );
      expect(await xpath(domXml, "/domain/devices/disk[1]/source/@file"), label).toBe(domain.disk);
      expect(await xpath(domXml, "/domain/devices/disk[2]/source/@file"), label).toBe(
        domain.iso.location,
      );
      const domDefined = await virsh(["define", domXml], { cwd });
      expect(domDefined.code, `${label}: ${describeRan(domDefined)}`).toBe(0);
      expect(domDefined.stdout, label).toContain(value);
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  it("that libvirt refuses are refused by libvirt's name check, not as broken XML", async () => {
    const cases = [
      {
        name: `a/b $(touch /tmp/${MARKER})`,
        network: "invalid char in name",
        domain: "cannot contain '/'",
      },
      { name: "line one\nline two", network: null, domain: "invalid char in name" },
    ];
    for (const { name, network: netRefusal, domain: domRefusal } of cases) {
      const network = oddNetwork(name, 90);
      const netXml = xmlFile(renderNetworkXml(networkFile([network]), network));
      expect((await run(["xmllint", "--noout", netXml])).code).toBe(0);
      expect(await xpath(netXml, "/network/name")).toBe(name);
      const netDefined = await virsh(["net-define", netXml]);
      if (netRefusal === null) expect(netDefined.code, describeRan(netDefined)).toBe(0);
      else {
        expect(netDefined.code).toBe(1);
        expect(netDefined.stderr).toContain(netRefusal);
      }

      const domain = oddDomain(name, "odd");
      const domXml = xmlFile(renderDomainXml(domainFile([domain]), domain));
      expect((await run(["xmllint", "--noout", domXml])).code).toBe(0);
      expect(await xpath(domXml, "/domain/name")).toBe(name);
      const domDefined = await virsh(["define", domXml]);
      expect(domDefined.code).toBe(1);
      expect(domDefined.stderr).toContain(domRefusal);
      expect(domDefined.stderr).not.toMatch(/parser error|not well-formed|Failed to parse/i);
    }
    expect(existsSync(`/tmp/${MARKER}`)).toBe(false);
  });

  it("refuses characters no XML document can hold, naming the template and field", () => {
    const network = oddNetwork("bell\u0007", 1);
    expect(() => renderNetworkXml(networkFile([network]), network)).toThrow(ConfigError);
    expect(() => renderNetworkXml(networkFile([network]), network)).toThrow(
      /network\.xml\.njk: network\.name: holds U\+0007/,
    );
    const domain = oddDomain("ok", "ok");
    domain.interfaces = [{ name: "lone\uD800", type: "network" }];
    expect(() => renderDomainXml(domainFile([domain]), domain)).toThrow(
      /domain\.interfaces\[0\]\.name: holds U\+D800/,
    );
  });
});

describe("templates", () => {
  it("come from the configured path, may include their neighbours, and autoescape", () => {
    const dir = mkdtempSync(join(work, "tpl-"));
    writeFileSync(join(dir, "name.njk"), "<name>{{ network.name }}</name>");
    writeFileSync(
      join(dir, "net.njk"),
      '<network>{% include "name.njk" %}<bridge name="{{ network.brName }}"/></network>',
    );
    const network = oddNetwork(`<a href="x">&`, 1);
    const xml = renderNetworkXml(
      { file: "/x/network.yaml", template: join(dir, "net.njk"), networks: [network] },
      network,
    );
    expect(xml).toBe(
      '<network><name>&lt;a href=&quot;x&quot;&gt;&amp;</name><bridge name="laasodd1"/></network>',
    );
  });

  it("a misspelt or null field is a ConfigError naming the template, not an empty attribute", () => {
    const dir = mkdtempSync(join(work, "tpl-"));
    const template = join(dir, "bad.njk");
    writeFileSync(template, '<network><forward mode="{{ network.forward.mode }}"/></network>');
    const network = oddNetwork("n", 1);
    const file = { file: "/x/network.yaml", template, networks: [network] };
    expect(() => renderNetworkXml(file, network)).toThrow(ConfigError);
    expect(() => renderNetworkXml(file, network)).toThrow(/bad\.njk: cannot render/);
  });

  it("the domain's disk may be given in place of the definition's", async () => {
    const file = fuel.hypervisor.vms;
    const domain = file.domains[0]!;
    const xml = xmlFile(renderDomainXml(file, domain, { diskPath: "/srv/pods/other.qcow2" }));
    expect(await xpath(xml, "/domain/devices/disk[@device='disk']/source/@file")).toBe(
      "/srv/pods/other.qcow2",
    );
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** argv[3] (the virsh command) or argv[0] (anything else), with the name it is about. */
function shape(command: RemoteCommand): string {
  const [program, , , verb, ...rest] = command.argv;
  if (program !== "virsh") return command.argv.slice(0, 2).join(" ");
  const named = rest[0]?.startsWith("--") ? rest[1] : undefined;
  return named ? `${verb} ${named}` : `${verb}`;
}

describe("buildPlan", () => {
  it("is the ordered pod for the shipped Fuel config", () => {
    const plan = buildPlan(fuel, { masterDomain: "jumphost", diskSizeGB: 40 });
    expect(plan.map(shape)).toEqual([
      "destroy jumphost",
      "undefine jumphost",
      "destroy node1",
      "undefine node1",
      "net-destroy admin",
      "net-undefine admin",
      "net-destroy public",
      "net-undefine public",
      "net-destroy management",
      "net-undefine management",
      "net-define",
      "net-start admin",
      "net-autostart admin",
      "net-define",
      "net-start public",
      "net-autostart public",
      "net-define",
      "net-start management",
      "net-autostart management",
      "mkdir -p",
      "curl -fsSL",
      "qemu-img create",
      "qemu-img create",
      "define",
      "define",
      "start jumphost",
      "domiflist jumphost",
      "domiflist node1",
    ]);
    for (const command of plan.filter((c) => c.argv[0] === "virsh")) {
      expect(command.argv.slice(0, 3)).toEqual(["virsh", "-c", "qemu:///system"]);
    }
    expect(plan[19]!.argv).toEqual(["mkdir", "-p", "--", "/var/lib/libvirt/images"]);
    expect(plan[20]).toEqual({
      argv: [
        "curl",
        "-fsSL",
        "--retry",
        "3",
        "-o",
        "/var/lib/libvirt/images/opnfv.iso",
        "--url",
        "http://127.0.0.1:8080/iso/opnfv.iso",
      ],
      timeoutSeconds: POD_TIMEOUTS.isoFetch,
    });
    expect(plan[21]!.argv).toEqual([
      "qemu-img",
      "create",
      "-f",
      "qcow2",
      "--",
      "/var/lib/libvirt/images/jumphost.qcow2",
      "40G",
    ]);
    // Teardown tolerates "not found"; nothing after it does.
    expect(plan.slice(0, 10).every((c) => c.okExitCodes?.join() === "0,1")).toBe(true);
    expect(plan.slice(10).every((c) => c.okExitCodes === undefined)).toBe(true);
    expect(plan.every((c) => c.timeoutSeconds > 0 && c.timeoutSeconds <= 3600)).toBe(true);
  });

  it("carries XML only on stdin, never in an argument", () => {
    const plan = buildPlan(fuel, { masterDomain: "jumphost", diskSizeGB: 40 });
    const withXml = plan.filter((c) => c.stdin !== undefined);
    expect(withXml.map((c) => c.argv.slice(3))).toEqual([
      ["net-define", "/dev/stdin"],
      ["net-define", "/dev/stdin"],
      ["net-define", "/dev/stdin"],
      ["define", "/dev/stdin"],
      ["define", "/dev/stdin"],
    ]);
    expect(withXml.map((c) => c.stdin?.trimStart().slice(0, 9))).toEqual([
      "<network>",
      "<network>",
      "<network>",
      "<domain t",
      "<domain t",
    ]);
    for (const command of plan) {
      for (const arg of command.argv) expect(arg).not.toMatch(/[<>]/);
    }
  });

  it("runs on real virsh: the define commands succeed, teardown tolerates what is absent", async () => {
    const plan = buildPlan(fuel, {
      masterDomain: "jumphost",
      diskSizeGB: 40,
      connectUri: TEST_URI,
    });
    const defines = plan.filter((c) => c.stdin !== undefined);
    expect(defines).toHaveLength(5);
    for (const command of defines) {
      const result = await run(command.argv, { stdin: command.stdin });
      expect(result.code, `${command.display}: ${describeRan(result)}`).toBe(0);
    }
    // A fresh test driver has none of the pod's names: each teardown command fails, tolerated.
    for (const command of plan.slice(0, 10)) {
      const result = await run(command.argv);
      expect(result.code, describeRan(result)).toBe(1);
      expect(command.okExitCodes).toContain(result.code);
    }
    // Where they exist (the test driver's own domain and network) they go. The driver lives as
    // long as one virsh process, so the sequence runs as one virsh command line.
    const builtin = teardownPlan(
      networkFile([oddNetwork("default", 1)]),
      domainFile([oddDomain("test", "test")]),
      { connectUri: TEST_URI },
    );
    const line = builtin.map((command) => command.argv.slice(3).join(" ")).join("; ");
    const result = await virsh([`${line}; list --all --name; net-list --all --name`]);
    expect(result.code, describeRan(result)).toBe(0);
    expect(result.stdout).toContain("Domain 'test' has been undefined");
    expect(result.stdout).toContain("Network default has been undefined");
    expect(result.stdout.trimEnd().endsWith("undefined")).toBe(true);
  });

  it("keeps odd names whole, one argument each, and nothing they hold runs", async () => {
    const cwd = mkdtempSync(join(work, "plan-"));
    const names = Object.values(ODD_VALUES);
    const networks = names.map((name, index) => oddNetwork(name, index));
    const domains = names.map((name, index) => oddDomain(name, `disk-${index} ${name}`));
    const config: InstallerConfig = {
      ...fuel,
      hypervisor: { networks: networkFile(networks), vms: domainFile(domains) },
    };
    const plan = buildPlan(config, {
      masterDomain: names[3]!,
      diskSizeGB: 1,
      connectUri: TEST_URI,
    });
    for (const name of names) {
      expect(plan.some((c) => c.argv.at(-1) === name && c.argv[3] === "net-start")).toBe(true);
      expect(plan.some((c) => c.argv.at(-1) === name && c.argv[3] === "domiflist")).toBe(true);
    }
    expect(plan.find((c) => c.argv[3] === "start")?.argv).toEqual([
      "virsh",
      "-c",
      TEST_URI,
      "start",
      "--domain",
      names[3],
    ]);
    for (const command of plan.filter((c) => c.stdin !== undefined)) {
      const result = await run(command.argv, { stdin: command.stdin, cwd });
      expect(result.code, `${command.display}: ${describeRan(result)}`).toBe(0);
    }
    for (const command of plan.filter((c) => c.argv[0] === "virsh" && c.stdin === undefined)) {
      const result = await run(command.argv, { cwd });
      // The names do not exist in this fresh driver: libvirt says so, naming them whole.
      const flag = command.argv.findIndex((arg) => arg === "--domain" || arg === "--network");
      const name = command.argv[flag + 1]!;
      expect(result.code).toBe(1);
      expect(result.stderr, describeRan(result)).toMatch(
        new RegExp(`(get domain|get network|network with matching name) '${escapeRegExp(name)}'`),
      );
    }
    expect(readdirSync(cwd)).toEqual([]);
  });

  it("starts no domain without a master, and refuses a master that is not in the file", () => {
    const plan = buildPlan(fuel, { masterDomain: null, diskSizeGB: 40 });
    expect(plan.some((c) => c.argv[3] === "start")).toBe(false);
    expect(plan.at(-1)?.argv.slice(3)).toEqual(["domiflist", "--domain", "node1"]);
    expect(() => buildPlan(fuel, { masterDomain: "fuel-master", diskSizeGB: 40 })).toThrow(
      /no domain fuel-master to start as master/,
    );
  });

  it("refuses a disk size that is not a positive whole number", () => {
    for (const diskSizeGB of [0, -5, 1.5, Number.NaN]) {
      expect(() => buildPlan(fuel, { masterDomain: null, diskSizeGB })).toThrow(ConfigError);
    }
  });

  it("fetches an ISO shared by several domains once, and refuses two URLs for one location", () => {
    const a = oddDomain("a", "a");
    const b = { ...oddDomain("b", "b"), iso: a.iso };
    const shared = { ...fuel, hypervisor: { ...fuel.hypervisor, vms: domainFile([a, b]) } };
    const plan = buildPlan(shared, { masterDomain: null, diskSizeGB: 1 });
    expect(plan.filter((c) => c.argv[0] === "curl")).toHaveLength(1);
    // One mkdir per directory: /srv/iso and /var/lib/libvirt/images.
    expect(plan.filter((c) => c.argv[0] === "mkdir").map((c) => c.argv[3])).toEqual([
      "/srv/iso",
      "/var/lib/libvirt/images",
    ]);

    const c = { ...oddDomain("c", "c"), iso: { ...a.iso, url: "http://127.0.0.1:8080/other.iso" } };
    const conflicting = { ...fuel, hypervisor: { ...fuel.hypervisor, vms: domainFile([a, c]) } };
    expect(() => buildPlan(conflicting, { masterDomain: null, diskSizeGB: 1 })).toThrow(
      /iso\.location \/srv\/iso\/a\.iso is given two URLs/,
    );
    const sameDisk = {
      ...fuel,
      hypervisor: { ...fuel.hypervisor, vms: domainFile([a, { ...b, disk: a.disk }]) },
    };
    expect(() => buildPlan(sameDisk, { masterDomain: null, diskSizeGB: 1 })).toThrow(
      /is already the disk of a/,
    );
  });

  it("skips the fetch of ISOs that are not used", () => {
    const node1 = fuel.hypervisor.vms.domains.find((d) => d.name === "node1")!;
    const config = { ...fuel, hypervisor: { ...fuel.hypervisor, vms: domainFile([node1]) } };
    const plan = buildPlan(config, { masterDomain: null, diskSizeGB: 1 });
    expect(plan.some((c) => c.argv[0] === "curl")).toBe(false);
  });
});

describe("removalPlan", () => {
  it("is the teardown: domains first, then networks, on the system connection", () => {
    const plan = removalPlan(pharos.cleanConfig);
    expect(plan).toEqual(
      teardownPlan(pharos.cleanConfig.hypervisor.networks, pharos.cleanConfig.hypervisor.vms),
    );
    expect(plan.map(shape)).toEqual([
      "destroy jumphost",
      "undefine jumphost",
      "destroy node1",
      "undefine node1",
      "net-destroy admin",
      "net-undefine admin",
      "net-destroy public",
      "net-undefine public",
      "net-destroy management",
      "net-undefine management",
    ]);
    expect(plan[1]!.argv).toEqual([
      "virsh",
      "-c",
      "qemu:///system",
      "undefine",
      "--domain",
      "jumphost",
      "--managed-save",
      "--snapshots-metadata",
    ]);
  });
});

describe("domiflist", () => {
  it("reads real virsh output", async () => {
    const result = await virsh(["domiflist", "--domain", "test"]);
    expect(result.code, describeRan(result)).toBe(0);
    expect(parseDomiflist(result.stdout)).toEqual([
      {
        interface: "testnet0",
        type: "network",
        source: "default",
        model: null,
        mac: "aa:bb:cc:dd:ee:ff",
      },
    ]);
    expect(macsBySource(result.stdout)).toEqual({ default: "aa:bb:cc:dd:ee:ff" });
  });

  it("reads stopped domains, bridges, sources with spaces, and upper-case MACs", () => {
    const output = [
      " Interface   Type      Source          Model    MAC",
      "-------------------------------------------------------------",
      " -           network   admin           virtio   52:54:00:6B:3C:58",
      " vnet3       bridge    br-ext          e1000    52:54:00:0e:7a:11",
      " -           network   pod net one     virtio   52:54:00:00:00:01",
      " -           network   admin           virtio   52:54:00:00:00:02",
      "",
    ].join("\n");
    expect(parseDomiflist(output)).toEqual([
      {
        interface: null,
        type: "network",
        source: "admin",
        model: "virtio",
        mac: "52:54:00:6b:3c:58",
      },
      {
        interface: "vnet3",
        type: "bridge",
        source: "br-ext",
        model: "e1000",
        mac: "52:54:00:0e:7a:11",
      },
      {
        interface: null,
        type: "network",
        source: "pod net one",
        model: "virtio",
        mac: "52:54:00:00:00:01",
      },
      {
        interface: null,
        type: "network",
        source: "admin",
        model: "virtio",
        mac: "52:54:00:00:00:02",
      },
    ]);
    expect(macsBySource(output)).toEqual({
      admin: "52:54:00:6b:3c:58",
      "br-ext": "52:54:00:0e:7a:11",
      "pod net one": "52:54:00:00:00:01",
    });
  });

  it("a domain without interfaces has none; a source named __proto__ is just a key", () => {
    const header =
      " Interface   Type   Source   Model   MAC\n-----------------------------------\n";
    expect(parseDomiflist(header)).toEqual([]);
    const macs = macsBySource(`${header} -   network   __proto__   virtio   52:54:00:00:00:03\n`);
    expect(Object.keys(macs)).toEqual(["__proto__"]);
    expect(Object.getPrototypeOf(macs)).toBe(Object.prototype);
  });

  it("refuses output it does not understand", () => {
    expect(() => parseDomiflist("error: failed to get domain 'x'\n")).toThrow(ProtocolError);
    const header =
      " Interface   Type   Source   Model   MAC\n-----------------------------------\n";
    expect(() => parseDomiflist(`${header} vnet0 network admin virtio not-a-mac\n`)).toThrow(
      /cannot read row/,
    );
    expect(() => parseDomiflist(`${header} vnet0 52:54:00:00:00:03\n`)).toThrow(ProtocolError);
  });
});
