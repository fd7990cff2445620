import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
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
import { ISO_FETCH_SCRIPT } from "../lib/pod/iso";
import { buildPlan, POD_TIMEOUTS, removalPlan, teardownPlan } from "../lib/pod/plan";
import { renderDomainXml, renderNetworkXml } from "../lib/pod/render";
import type { RemoteCommand } from "../lib/ports/relay";
import { HostShell } from "../sim/host-shell";
import {
  describeRan,
  ensureLibvirtTools,
  ensureShellcheck,
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
      sha256: null,
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

  it("fetches an ISO with a sha256 through the checking script, the values its arguments", () => {
    const digest = "ab".repeat(32);
    const a = { ...oddDomain("a", "a $(touch x)"), iso: { ...oddDomain("a", "a").iso } };
    a.iso.sha256 = digest;
    const b = { ...oddDomain("b", "b"), iso: a.iso };
    const config = { ...fuel, hypervisor: { ...fuel.hypervisor, vms: domainFile([a, b]) } };
    const plan = buildPlan(config, { masterDomain: null, diskSizeGB: 1 });
    expect(plan.some((c) => c.argv[0] === "curl")).toBe(false);
    const fetches = plan.filter((c) => c.argv[0] === "sh");
    expect(fetches).toEqual([
      {
        argv: ["sh", "-c", ISO_FETCH_SCRIPT, "sh", "/srv/iso/a.iso", a.iso.url, digest],
        timeoutSeconds: POD_TIMEOUTS.isoFetch,
        display: `fetch ISO ${a.iso.url} to /srv/iso/a.iso (sha256 ${digest})`,
      },
    ]);
    // The script is fixed: nothing of the config is in it.
    expect(ISO_FETCH_SCRIPT).not.toContain(digest);
    expect(ISO_FETCH_SCRIPT).not.toContain("/srv/iso");
    // After its directory is made, before the disks.
    const at = plan.indexOf(fetches[0]!);
    expect(plan[at - 1]?.argv).toEqual(["mkdir", "-p", "--", "/srv/iso"]);
    expect(plan[at + 1]?.argv[0]).toBe("mkdir");
  });

  it("refuses two sha256 for one ISO location, and a digest not in sha256sum's form", () => {
    const a = oddDomain("a", "a");
    const b = { ...oddDomain("b", "b"), iso: { ...a.iso, sha256: "cd".repeat(32) } };
    const two = { ...fuel, hypervisor: { ...fuel.hypervisor, vms: domainFile([a, b]) } };
    expect(() => buildPlan(two, { masterDomain: null, diskSizeGB: 1 })).toThrow(
      /b: iso\.location \/srv\/iso\/a\.iso is given two sha256 \(none, cdcd/,
    );
    for (const sha256 of ["AB".repeat(32), "ab".repeat(31), "$(reboot)", ""]) {
      const odd = { ...oddDomain("c", "c"), iso: { ...a.iso, sha256 } };
      const config = { ...fuel, hypervisor: { ...fuel.hypervisor, vms: domainFile([odd]) } };
      expect(() => buildPlan(config, { masterDomain: null, diskSizeGB: 1 })).toThrow(
        /c: iso\.sha256 must be 64 lower-case hex digits/,
      );
    }
  });
});

describe("iso.sha256 in domain.yaml", () => {
  let root: string;
  let pharosFile: string;
  const domainYaml = () => join(root, "conf", "domain.yaml");

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "laas-iso-conf-"));
    cpSync(join(REPO, "conf"), join(root, "conf"), { recursive: true });
    cpSync(join(REPO, "templates"), join(root, "templates"), { recursive: true });
    pharosFile = join(root, "conf", "pharos.yaml");
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function withSha256(value: unknown): void {
    const doc = parseDocument(readFileSync(join(REPO, "conf", "domain.yaml"), "utf8"));
    doc.setIn(["domains", 0, "iso", "sha256"], value);
    writeFileSync(domainYaml(), String(doc));
  }

  async function loadError(): Promise<string> {
    const error = await loadPharosConfig(pharosFile).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }

  it("is optional, and kept in lower case when given", async () => {
    const shipped = pharos.defaultConfigs.get("Fuel")!.hypervisor.vms.domains;
    expect(shipped.map((d) => d.iso.sha256)).toEqual([null, null]);
    const digest = createHash("sha256").update("an ISO").digest("hex");
    withSha256(`  ${digest.toUpperCase()} `);
    const loaded = await loadPharosConfig(pharosFile);
    const vms = loaded.defaultConfigs.get("Fuel")!.hypervisor.vms;
    expect(vms.domains[0]?.iso).toEqual({
      used: true,
      url: "http://127.0.0.1:8080/iso/opnfv.iso",
      location: "/var/lib/libvirt/images/opnfv.iso",
      sha256: digest,
    });
    withSha256(null);
    const unset = await loadPharosConfig(pharosFile);
    expect(unset.defaultConfigs.get("Fuel")!.hypervisor.vms.domains[0]?.iso.sha256).toBeNull();
  });

  it("refuses anything but 64 hex digits, naming the file and the field", async () => {
    for (const [value, found] of [
      ["ab".repeat(31), JSON.stringify(`${"ab".repeat(20)}…`)],
      ["ab".repeat(33), JSON.stringify(`${"ab".repeat(20)}…`)],
      [`${"ab".repeat(31)}zz`, JSON.stringify(`${"ab".repeat(20)}…`)],
      ["sha256:abc", '"sha256:abc"'],
      [1234, "1234"],
    ] as const) {
      withSha256(value);
      expect(await loadError()).toBe(
        `${domainYaml()}: domains[0].iso.sha256: expected a SHA-256 digest: 64 hex digits, got ${found}`,
      );
    }
  });
});

/**
 * The checked fetch of an ISO: the script run for real (dash, curl, sha256sum) against an HTTP
 * server on 127.0.0.1, and the simulated host's emulation of it, which must answer the same.
 */
describe("the checked ISO fetch", () => {
  let server: Server;
  let base: string;
  const requests: string[] = [];
  let dir: string;

  /** What the simulated host's curl writes for a URL; the server here sends the same. */
  const served = (url: string) => `simulated content of ${url}\n`;
  const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

  beforeAll(async () => {
    ensureShellcheck();
    server = createServer((request, response) => {
      requests.push(request.url ?? "");
      if (request.url?.startsWith("/missing")) {
        response.writeHead(404).end("not here\n");
        return;
      }
      response.writeHead(200, { "content-type": "application/octet-stream" });
      response.end(served(`${base}${request.url ?? ""}`));
    });
    await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(work, "iso-"));
  }, 600_000);

  afterAll(async () => {
    await new Promise((closed) => server?.close(closed));
  });

  const argv = (location: string, url: string, digest: string) => [
    "sh",
    "-c",
    ISO_FETCH_SCRIPT,
    "sh",
    location,
    url,
    digest,
  ];

  /** The script on this machine; its answer as the relay would report it. */
  async function real(location: string, url: string, digest: string) {
    const ran = await run(argv(location, url, digest), { cwd: dir });
    return { exitCode: ran.code, stdout: ran.stdout, stderr: ran.stderr };
  }

  /** The same on a simulated host holding `present` at the location (if given). */
  async function simulated(location: string, url: string, digest: string, present?: string) {
    const shell = new HostShell({ name: "pod1", fetchMs: 0 });
    shell.directories.add(dirname(location));
    if (present !== undefined) shell.files.set(location, present);
    const result = await shell.run(argv(location, url, digest), async () => "");
    return { result, file: shell.files.get(location) };
  }

  function fileAt(location: string): string | undefined {
    return existsSync(location) ? readFileSync(location, "utf8") : undefined;
  }

  it("passes shellcheck as POSIX sh", async () => {
    const script = join(dir, "iso-fetch.sh");
    writeFileSync(script, `${ISO_FETCH_SCRIPT}\n`);
    const result = await run(["shellcheck", "--shell=sh", "--severity=style", script]);
    expect(result.code, describeRan(result)).toBe(0);
  });

  it("fetches an ISO of the expected digest, then keeps it without fetching again", async () => {
    // An odd path: none of it is run, and sha256sum reads the file on stdin whatever its name.
    const location = join(dir, `good $(touch ${MARKER}) \\ 'q'.iso`);
    const url = `${base}/iso/good.iso`;
    const digest = sha256(served(url));
    const before = requests.length;
    const fetched = await real(location, url, digest);
    expect(fetched).toEqual({ exitCode: 0, stdout: "fetched\n", stderr: "" });
    expect(fileAt(location)).toBe(served(url));
    expect(requests.length).toBe(before + 1);
    const again = await real(location, url, digest);
    expect(again).toEqual({ exitCode: 0, stdout: "present\n", stderr: "" });
    expect(requests.length).toBe(before + 1);
    expect(existsSync(join(dir, MARKER))).toBe(false);

    expect((await simulated(location, url, digest)).result).toEqual(fetched);
    const kept = await simulated(location, url, digest, served(url));
    expect(kept.result).toEqual(again);
    // Present and good, the URL is not even asked: here it would answer 404.
    const cached = await real(location, `${base}/missing/good.iso`, digest);
    expect(cached).toEqual({ exitCode: 0, stdout: "present\n", stderr: "" });
  });

  it("fails on a download of another digest, naming the ISO and both digests, and leaves no file", async () => {
    const location = join(dir, "bad.iso");
    const url = `${base}/iso/bad.iso`;
    const wrong = sha256("the ISO the mirror should have had");
    const actual = sha256(served(url));
    const failed = await real(location, url, wrong);
    expect(failed).toEqual({
      exitCode: 4,
      stdout: "",
      stderr: `ISO ${location} from ${url}: its sha256 is ${actual}, expected ${wrong}; the file is removed\n`,
    });
    expect(fileAt(location)).toBeUndefined();
    const sim = await simulated(location, url, wrong);
    expect(sim.result).toEqual(failed);
    expect(sim.file).toBeUndefined();
    // Nothing left in place: the next attempt fetches again (and, with the right digest, passes).
    const before = requests.length;
    expect(await real(location, url, actual)).toEqual({
      exitCode: 0,
      stdout: "fetched\n",
      stderr: "",
    });
    expect(requests.length).toBe(before + 1);
  });

  it("checks an ISO already in place: a stale one is fetched again, and removed if still wrong", async () => {
    const location = join(dir, "stale.iso");
    const url = `${base}/iso/stale.iso`;
    const stale = "an older ISO\n";
    const digest = sha256(served(url));
    const note = `ISO ${location} is there with sha256 ${sha256(stale)}, not ${digest}: fetched again\n`;
    writeFileSync(location, stale);
    const refreshed = await real(location, url, digest);
    expect(refreshed).toEqual({ exitCode: 0, stdout: "fetched\n", stderr: note });
    expect(fileAt(location)).toBe(served(url));
    expect((await simulated(location, url, digest, stale)).result).toEqual(refreshed);

    const wrong = sha256("yet another ISO");
    writeFileSync(location, stale);
    const failed = await real(location, url, wrong);
    expect(failed.exitCode).toBe(4);
    expect(failed.stderr).toBe(
      `ISO ${location} is there with sha256 ${sha256(stale)}, not ${wrong}: fetched again\n` +
        `ISO ${location} from ${url}: its sha256 is ${digest}, expected ${wrong}; the file is removed\n`,
    );
    expect(fileAt(location)).toBeUndefined();
    const sim = await simulated(location, url, wrong, stale);
    expect(sim.result).toEqual(failed);
    expect(sim.file).toBeUndefined();
  });

  it("ends with curl's status when the download fails", async () => {
    const location = join(dir, "missing.iso");
    const failed = await real(location, `${base}/missing/x.iso`, sha256("x"));
    expect(failed.exitCode).toBe(22);
    expect(failed.stderr).toContain("404");
    expect(failed.stdout).toBe("");
  });

  it("runs in the pod plan on a simulated host: a good ISO passes, a bad one stops the plan", async () => {
    const jumphost = fuel.hypervisor.vms.domains.find((d) => d.name === "jumphost")!;
    const url = jumphost.iso.url!;
    const location = jumphost.iso.location!;
    const plan = (digest: string) =>
      buildPlan(
        {
          ...fuel,
          hypervisor: {
            ...fuel.hypervisor,
            vms: domainFile([{ ...jumphost, iso: { ...jumphost.iso, sha256: digest } }]),
          },
        },
        { masterDomain: "jumphost", diskSizeGB: 1 },
      );
    /** Runs the plan as buildPod does: in order, stopping at the first failure. */
    async function build(commands: RemoteCommand[], shell: HostShell) {
      for (const command of commands) {
        const result = await shell.run(command.argv, async () => command.stdin ?? "");
        if (!(command.okExitCodes ?? [0]).includes(result.exitCode)) {
          return { failed: command.display ?? command.argv.join(" "), result };
        }
      }
      return null;
    }
    const good = new HostShell({ name: "pod1", fetchMs: 0 });
    expect(await build(plan(sha256(served(url))), good)).toBeNull();
    expect(good.files.get(location)).toBe(served(url));
    expect(good.domains.get("jumphost")?.running).toBe(true);

    const wrong = sha256("not the ISO");
    const bad = new HostShell({ name: "pod1", fetchMs: 0 });
    const stopped = await build(plan(wrong), bad);
    expect(stopped?.failed).toBe(`fetch ISO ${url} to ${location} (sha256 ${wrong})`);
    expect(stopped?.result.exitCode).toBe(4);
    expect(stopped?.result.stderr).toContain(
      `its sha256 is ${sha256(served(url))}, expected ${wrong}`,
    );
    expect(bad.files.has(location)).toBe(false);
    expect(bad.domains.size).toBe(0);
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
