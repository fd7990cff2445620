import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPharosConfig } from "../lib/config/load";
import type { DomainFile, PharosConfig } from "../lib/config/types";
import { ConfigError } from "../lib/errors";
import { INSTALLER_PLUGINS, installerPlugin } from "../lib/installers/registry";
import type { InstallerContext, InstallerPlugin, InstallerStep } from "../lib/installers/types";
import { describeRan, ensureShellcheck, run } from "./helpers/virsh";

const REPO = resolve(import.meta.dirname, "..");
const SCRIPTS = ["fuel", "joid", "compass"].map((name) =>
  join(REPO, "templates", "installers", name, "deploy.sh"),
);
const HOSTILE = `x"; $(touch pwned) \`touch pwned\` 'y' | touch pwned &\nrm -rf ~ #`;

let pharos: PharosConfig;
let work: string;

beforeAll(async () => {
  pharos = await loadPharosConfig(join(REPO, "conf", "pharos.yaml"));
  work = mkdtempSync(join(tmpdir(), "laas-installers-"));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function context(scenario: string | null, remoteDir = "/var/tmp/laas"): InstallerContext {
  const fuel = pharos.defaultConfigs.get("Fuel")!;
  return {
    scenario,
    hostName: "fog-machine-4",
    domains: fuel.hypervisor.vms,
    networks: fuel.hypervisor.networks,
    remoteDir,
  };
}

/** Each step as one line: what it would do, in order. */
function sequence(steps: InstallerStep[]): (string | string[])[] {
  return steps.map((step) =>
    step.kind === "copy" ? `copy ${step.source} -> ${step.destination}` : step.command.argv,
  );
}

const script = (name: string) => join(REPO, "templates", "installers", name, "deploy.sh");

describe("installerPlugin", () => {
  it("answers the dashboard's names without regard to case", () => {
    expect(installerPlugin("Fuel").name).toBe("fuel");
    expect(installerPlugin(" FUEL ").name).toBe("fuel");
    expect(installerPlugin("Joid").name).toBe("joid");
    expect(installerPlugin("joid").name).toBe("joid");
    expect(installerPlugin("Compass").name).toBe("compass");
    for (const none of [null, undefined, "", "none", "None", "null"]) {
      expect(installerPlugin(none).name).toBe("none");
    }
  });

  it("has a plugin for every installer of the shipped default_configs", () => {
    for (const [name, config] of pharos.defaultConfigs) {
      expect(installerPlugin(name).name).toBe(installerPlugin(config.installer).name);
    }
    expect(installerPlugin(pharos.cleanConfig.installer).name).toBe("none");
  });

  it("refuses an unknown installer with a ConfigError naming it and the known ones", () => {
    expect(() => installerPlugin("Apex")).toThrow(ConfigError);
    expect(() => installerPlugin("Apex")).toThrow(
      'unknown installer "Apex"; known: fuel, joid, compass, none',
    );
    expect(() => installerPlugin("fuel; reboot")).toThrow(ConfigError);
  });

  it("plugins have lower-case aliases that no two share", () => {
    const all = INSTALLER_PLUGINS.flatMap((plugin) => plugin.aliases);
    expect(new Set(all).size).toBe(all.length);
    for (const alias of all) expect(alias).toBe(alias.toLowerCase());
  });
});

describe("installer steps", () => {
  it("fuel: copies its script and runs it with the master, the nodes and the scenario", () => {
    const plugin = installerPlugin("Fuel");
    const ctx = context("os-odl_l2-nofeature-ha");
    expect(plugin.masterDomain(ctx.domains)).toBe("jumphost");
    expect(sequence(plugin.steps(ctx))).toEqual([
      ["mkdir", "-p", "--", "/var/tmp/laas"],
      `copy ${script("fuel")} -> /var/tmp/laas/deploy.sh`,
      [
        "bash",
        "/var/tmp/laas/deploy.sh",
        "--scenario",
        "os-odl_l2-nofeature-ha",
        "--pod",
        "fog-machine-4",
        "--master-domain",
        "jumphost",
        "--node",
        "node1",
      ],
    ]);
  });

  it("joid and compass: copy their script and run it with the scenario", () => {
    for (const name of ["joid", "compass"]) {
      const plugin = installerPlugin(name);
      const ctx = context("os-nosdn-nofeature-noha", "/root/laas");
      expect(plugin.masterDomain(ctx.domains)).toBe("jumphost");
      expect(sequence(plugin.steps(ctx))).toEqual([
        ["mkdir", "-p", "--", "/root/laas"],
        `copy ${script(name)} -> /root/laas/deploy.sh`,
        [
          "bash",
          "/root/laas/deploy.sh",
          "--scenario",
          "os-nosdn-nofeature-noha",
          "--pod",
          "fog-machine-4",
        ],
      ]);
    }
  });

  it("none: no steps and no master", () => {
    const plugin = installerPlugin(null);
    expect(plugin.steps(context("os-nosdn-nofeature-ha"))).toEqual([]);
    expect(plugin.masterDomain(context(null).domains)).toBeNull();
  });

  it("leave the scenario to the script when there is none", () => {
    for (const name of ["fuel", "joid", "compass"]) {
      const steps = installerPlugin(name).steps(context(null));
      const last = steps.at(-1)!;
      expect(last.kind === "run" && last.command.argv.includes("--scenario")).toBe(false);
    }
  });

  it("pass a hostile scenario as one argument, right after --scenario", () => {
    for (const name of ["fuel", "joid", "compass"]) {
      const last = installerPlugin(name).steps(context(HOSTILE)).at(-1)!;
      if (last.kind !== "run") throw new Error("the last step runs the script");
      const at = last.command.argv.indexOf("--scenario");
      expect(last.command.argv[at + 1]).toBe(HOSTILE);
      expect(last.command.argv.filter((arg) => arg.includes("pwned"))).toEqual([HOSTILE]);
      expect(last.command.timeoutSeconds).toBeGreaterThanOrEqual(3600);
    }
  });

  it("refuse a remote directory that is not absolute", () => {
    expect(() => installerPlugin("fuel").steps(context(null, "laas"))).toThrow(ConfigError);
    expect(() => installerPlugin("joid").steps(context(null, "-rf"))).toThrow(ConfigError);
  });

  it("the master is the domain that boots the installer's ISO, else the first one", () => {
    const fuel = installerPlugin("fuel");
    const domains = context(null).domains;
    const [jumphost, node1] = domains.domains;
    const reversed: DomainFile = { ...domains, domains: [node1!, jumphost!] };
    expect(fuel.masterDomain(reversed)).toBe("jumphost");
    const noIso: DomainFile = { ...domains, domains: [node1!] };
    expect(fuel.masterDomain(noIso)).toBe("node1");
    const empty: DomainFile = { ...domains, domains: [] };
    expect(fuel.masterDomain(empty)).toBeNull();
    expect(() => fuel.steps({ ...context(null), domains: empty })).toThrow(/no domain/);
  });
});

describe("the shipped scripts", () => {
  beforeAll(() => ensureShellcheck(), 600_000);

  it.each(SCRIPTS)("%s passes bash -n", async (file) => {
    const result = await run(["bash", "-n", file]);
    expect(result.code, describeRan(result)).toBe(0);
  });

  it.each(SCRIPTS)("%s passes shellcheck", async (file) => {
    const result = await run(["shellcheck", "--shell=bash", "--severity=style", file]);
    expect(result.code, describeRan(result)).toBe(0);
  });
});

/**
 * Runs a plugin's steps on this machine, in order: the remote directory is a temporary one, the
 * copy a file copy, and the programs the scripts call on a pod host (virsh, ssh to the Fuel
 * master, the installers' own deploy scripts) are stubs that log what they were asked.
 */
async function runSteps(plugin: InstallerPlugin, scenario: string | null, extraArgs: string[]) {
  const root = mkdtempSync(join(work, `${plugin.name}-`));
  const remoteDir = join(root, "remote");
  const log = join(root, "log");
  writeFileSync(log, "");
  const steps = plugin.steps({ ...context(scenario), remoteDir });
  const results = [];
  for (const step of steps) {
    if (step.kind === "copy") {
      copyFileSync(step.source, step.destination);
      continue;
    }
    const argv =
      step.command.argv[0] === "bash" ? [...step.command.argv, ...extraArgs] : step.command.argv;
    results.push(
      await run(argv, {
        cwd: root,
        env: { ...process.env, PATH: `${stubs(root)}:${process.env.PATH}`, LOG: log },
      }),
    );
  }
  return {
    root,
    result: results.at(-1)!,
    log: readFileSync(log, "utf8").split("\n").filter(Boolean),
  };
}

/** Stub programs in <root>/bin; each appends what it was asked to $LOG. */
function stubs(root: string): string {
  const bin = join(root, "bin");
  mkdirSync(bin, { recursive: true });
  const stub = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  stub(
    "virsh",
    `printf 'virsh %s\\n' "$*" >> "$LOG"
if [[ " $* " == *" domstate "* ]]; then echo running; fi`,
  );
  // ssh's last argument is the command line the master's shell would run.
  stub(
    "ssh",
    `remote="\${*: -1}"
printf 'master: %s\\n' "$remote" >> "$LOG"
case "$remote" in
  *"node list --format value --column status"*) echo discover ;;
  *"node list --format value --column id"*) printf '2\\n1\\n' ;;
  *"env create"*) echo 7 ;;
  *"env show"*) echo operational ;;
esac`,
  );
  return bin;
}

describe("the scripts, run with stubs in place of the pod host's programs", () => {
  it("fuel: waits for the master, starts the nodes, creates, assigns and deploys", async () => {
    const { result, log } = await runSteps(installerPlugin("Fuel"), "os-nosdn-nofeature-ha", []);
    expect(result.code, describeRan(result)).toBe(0);
    expect(log).toEqual([
      "virsh -c qemu:///system domstate --domain jumphost",
      "master: fuel2 release list ",
      "virsh -c qemu:///system start --domain node1",
      "master: fuel2 node list --format value --column status ",
      "master: fuel2 env create --release 2 --format value --column id os-nosdn-nofeature-ha ",
      "master: fuel2 node list --format value --column id ",
      "master: fuel2 env add nodes --env 7 --nodes 1 --roles controller ",
      "master: fuel2 env add nodes --env 7 --nodes 2 --roles compute ",
      "master: fuel2 env deploy 7 ",
      "master: fuel2 env show --format value --column status 7 ",
    ]);
  });

  it("joid: turns the scenario into JOID's options", async () => {
    const runJoid = async (scenario: string | null) => {
      const joidDir = mkdtempSync(join(work, "joid-checkout-"));
      mkdirSync(join(joidDir, "ci"));
      writeFileSync(
        join(joidDir, "ci", "deploy.sh"),
        `#!/usr/bin/env bash\nprintf 'joid %s\\n' "$*" >> "$LOG"\nprintf 'cwd %s\\n' "$PWD" >> "$LOG"\n`,
      );
      chmodSync(join(joidDir, "ci", "deploy.sh"), 0o755);
      const ran = await runSteps(installerPlugin("Joid"), scenario, ["--joid-dir", joidDir]);
      return { ...ran, joidDir };
    };
    const noha = await runJoid("os-nosdn-nofeature-noha");
    expect(noha.result.code, describeRan(noha.result)).toBe(0);
    expect(noha.log).toEqual([
      "joid -m openstack -o pike -s nosdn -t nonha -f none -l default -d xenial",
      `cwd ${noha.joidDir}/ci`,
    ]);
    const odl = await runJoid("os-odl_l2-sfc-ha");
    expect(odl.log[0]).toBe(
      "joid -m openstack -o pike -s odl_l2 -t ha -f sfc -l default -d xenial",
    );
    const defaulted = await runJoid(null);
    expect(defaulted.log[0]).toContain("-s nosdn -t nonha -f none");
    const wrong = await runJoid("k8s-nosdn-nofeature-ha");
    expect(wrong.result.code).toBe(1);
    expect(wrong.result.stderr).toContain("not a JOID scenario");
    expect(wrong.log).toEqual([]);
  });

  it("compass: points compass4nfv at the scenario's pod description", async () => {
    const compassDir = mkdtempSync(join(work, "compass-checkout-"));
    const conf = join(compassDir, "deploy", "conf", "vm_environment");
    mkdirSync(conf, { recursive: true });
    writeFileSync(join(conf, "os-nosdn-nofeature-ha.yml"), "hosts: []\n");
    writeFileSync(
      join(compassDir, "deploy.sh"),
      `#!/usr/bin/env bash\nprintf 'compass DHA=%s NETWORK=%s DEPLOY_SCENARIO=%s\\n' "$DHA" "$NETWORK" "$DEPLOY_SCENARIO" >> "$LOG"\n`,
    );
    chmodSync(join(compassDir, "deploy.sh"), 0o755);
    const args = ["--compass-dir", compassDir];
    const { result, log } = await runSteps(
      installerPlugin("Compass"),
      "os-nosdn-nofeature-ha",
      args,
    );
    expect(result.code, describeRan(result)).toBe(0);
    expect(log).toEqual([
      `compass DHA=${conf}/os-nosdn-nofeature-ha.yml NETWORK=${conf}/network.yml DEPLOY_SCENARIO=os-nosdn-nofeature-ha`,
    ]);
    const missing = await runSteps(installerPlugin("Compass"), "os-odl-nofeature-ha", args);
    expect(missing.result.code).toBe(1);
    expect(missing.result.stderr).toContain("no virtual pod description for os-odl-nofeature-ha");
  });

  it.each(["fuel", "joid", "compass"])(
    "%s: a hostile scenario is refused before anything runs, and none of it executes",
    async (name) => {
      const { root, result, log } = await runSteps(installerPlugin(name), HOSTILE, []);
      expect(result.code, describeRan(result)).toBe(1);
      expect(result.stderr).toMatch(/not a (JOID )?scenario/);
      expect(log).toEqual([]);
      expect(existsSync(join(root, "pwned"))).toBe(false);
      expect(readdirSync(root).sort()).toEqual(["bin", "log", "remote"]);
    },
  );
});
