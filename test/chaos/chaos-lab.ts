/**
 * The lab a chaos run works on: the simulated lab (dashboard, FOG, bare-metal hosts, relay) with
 * a real slapd and SMTP server, and a fault point between LaaS and each service — an HTTP fault
 * proxy in front of the dashboard and FOG, a TCP fault proxy in front of the relay's sshd, slapd
 * and the SMTP server. The lab's config is rewritten to reach every service through its proxy,
 * so LaaS runs unchanged and the faults are what it would meet on a real network.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { stepHandlers } from "../../functions/steps";
import { main } from "../../lib/cli/main";
import { generateClientKey } from "../../sim/bare-metal";
import { handoverWith, type SimulatedLab, startSimulatedLab } from "../../sim/lab";
import { type RunningSlapd, startSlapd } from "../../sim/slapd";
import { startSmtpServer, type TestSmtpServer } from "../../sim/smtp";
import { type HttpFaultProxy, startHttpFaultProxy } from "./http-fault-proxy";
import type { PlannedUser } from "./plan";
import { startTcpFaultPoint, type TcpFaultPoint } from "./tcp-faults";

export interface ChaosLabOptions {
  seed: number;
  /** Lab hosts (at least the shipped inventory's 3). */
  hosts: number;
  users: PlannedUser[];
  /** How long an installer runs on a host (ms). */
  installerMs?: number;
  /** Deadlines in the installer configs (s). */
  imagingTimeout?: number;
  bootTimeout?: number;
  installTimeout?: number;
  /** FOG's request_timeout in the installer configs (s): how long a hung answer is waited for. */
  fogRequestTimeout?: number;
  /** handover.sweep_interval (s). */
  sweepInterval?: number;
  /** Leave the work folder (config, store, logs) behind for a look (default: removed). */
  keepWorkDir?: boolean;
}

export interface ChaosLab {
  lab: SimulatedLab;
  slapd: RunningSlapd;
  smtp: TestSmtpServer;
  workDir: string;
  database: string;
  configPath: string;
  dashboardProxy: HttpFaultProxy;
  fogProxy: HttpFaultProxy;
  relayProxy: TcpFaultPoint;
  ldapProxy: TcpFaultPoint;
  smtpProxy: TcpFaultPoint;
  /** Every secret value the lab's config holds (tokens, passwords, keys, sealing key). */
  configSecrets(): Promise<Map<string, string>>;
  close(): Promise<void>;
}

export const OPERATORS = ["lab-ops@lab.example.org"];
const SHIPPED_HOSTS = 3;

export async function startChaosLab(options: ChaosLabOptions): Promise<ChaosLab> {
  const workDir = await mkdtemp(join(tmpdir(), "laas-chaos-"));
  const closers: (() => Promise<unknown>)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    if (!options.keepWorkDir) await rm(workDir, { recursive: true, force: true });
  };
  try {
    const slapd = await startSlapd();
    closers.push(() => slapd.stop());
    const smtp = await startSmtpServer({ security: "starttls" });
    closers.push(() => smtp.close());
    const ldapUrl = new URL(slapd.url);
    const ldapProxy = await startTcpFaultPoint("ldap", {
      host: "127.0.0.1",
      port: Number(ldapUrl.port),
    });
    closers.push(() => ldapProxy.close());
    const smtpProxy = await startTcpFaultPoint("smtp", { host: "127.0.0.1", port: smtp.port });
    closers.push(() => smtpProxy.close());

    const handover = handoverWith(slapd, smtp, { operators: OPERATORS });
    // Through the proxies: slapd's certificate names 127.0.0.1, which the proxies listen on too.
    handover.directory.url = `ldap://127.0.0.1:${ldapProxy.port}`;
    handover.smtp.port = smtpProxy.port;
    handover.sweepInterval = options.sweepInterval ?? 10;
    const lab = await startSimulatedLab({
      workDir,
      timeScale: 400,
      pollInterval: 1,
      polling: 1,
      imagedBootMs: 400,
      installerMs: options.installerMs ?? 1_500,
      imagingTimeout: options.imagingTimeout ?? 20,
      bootTimeout: options.bootTimeout ?? 20,
      installTimeout: options.installTimeout ?? 30,
      extraHosts: Math.max(0, options.hosts - SHIPPED_HOSTS),
      handover,
    });
    closers.push(() => lab.close());
    if (lab.inventory.length !== Math.max(options.hosts, SHIPPED_HOSTS)) {
      throw new Error(`the lab has ${lab.inventory.length} hosts, ${options.hosts} wanted`);
    }

    const dashboardProxy = await startHttpFaultProxy({
      upstream: lab.dashboard.url,
      seed: options.seed,
      name: "dashboard",
    });
    closers.push(() => dashboardProxy.close());
    const fogProxy = await startHttpFaultProxy({
      upstream: lab.fog.url,
      seed: options.seed,
      name: "fog",
    });
    closers.push(() => fogProxy.close());
    const relayProxy = await startTcpFaultPoint("relay", {
      host: lab.relay.address,
      port: lab.relay.port,
    });
    closers.push(() => relayProxy.close());

    const conf = join(workDir, "conf");
    await pointConfigAtProxies(conf, {
      dashboard: dashboardProxy.url,
      fog: `${fogProxy.url}/fog/`,
      relayPort: relayProxy.port,
      fogRequestTimeout: options.fogRequestTimeout ?? 4,
    });
    for (const user of options.users) {
      lab.dashboard.addUser({
        id: user.id,
        username: user.username,
        email: user.email,
        ...(user.withKey ? { ssh_public_key: generateClientKey().publicKey } : {}),
      });
    }
    const output: string[] = [];
    const code = await main(["node", "laas", "reset-db", "--host", "--config", lab.configPath], {
      handlers: stepHandlers,
      out: (line) => output.push(line),
      err: (line) => output.push(line),
    });
    if (code !== 0) throw new Error(`laas reset-db --host exited ${code}: ${output.join("\n")}`);

    return {
      lab,
      slapd,
      smtp,
      workDir,
      database: join(workDir, "db"),
      configPath: lab.configPath,
      dashboardProxy,
      fogProxy,
      relayProxy,
      ldapProxy,
      smtpProxy,
      configSecrets: () => configSecrets(conf, slapd),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

interface ProxyEndpoints {
  dashboard: string;
  fog: string;
  relayPort: number;
  fogRequestTimeout: number;
}

/** The lab's config, edited to reach the dashboard, FOG and the relay through the proxies. */
async function pointConfigAtProxies(conf: string, at: ProxyEndpoints): Promise<void> {
  const edit = async (file: string, change: (doc: ReturnType<typeof parseDocument>) => void) => {
    const path = join(conf, file);
    const doc = parseDocument(await readFile(path, "utf8"));
    change(doc);
    await writeFile(path, doc.toString());
  };
  await edit("pharos.yaml", (doc) => {
    doc.set("dashboard", at.dashboard);
    doc.setIn(["relay", "port"], at.relayPort);
  });
  for (const file of ["fuel.yaml", "joid.yaml", "compass.yaml", "none.yaml"]) {
    await edit(file, (doc) => {
      doc.setIn(["fog", "server"], at.fog);
      doc.setIn(["fog", "request_timeout"], at.fogRequestTimeout);
    });
  }
}

/** The secrets the lab uses, by name: each file under conf/secrets/ and the LDAP password. */
async function configSecrets(conf: string, slapd: RunningSlapd): Promise<Map<string, string>> {
  const secrets = new Map<string, string>();
  const dir = join(conf, "secrets");
  for (const file of [
    "dashboard-token",
    "fog-api-key",
    "fog-user-key",
    "handover-key",
    "ldap-pass",
    "power_id_ed25519",
    "relay_id_ed25519",
  ]) {
    const text = (await readFile(join(dir, file), "utf8").catch(() => "")).trim();
    if (text === "") continue;
    if (text.includes("PRIVATE KEY-----")) {
      // A key is found by any line of its body, not only whole.
      const body = text.split("\n").filter((line) => !line.startsWith("-----"));
      body.forEach((line, n) => {
        if (line.length >= 16) secrets.set(`${file} (line ${n + 1})`, line);
      });
      continue;
    }
    secrets.set(file, text);
  }
  secrets.set("slapd admin password", slapd.adminPassword);
  secrets.set("slapd writer password", slapd.writerPassword);
  return secrets;
}
