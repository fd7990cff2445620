/**
 * A real OpenLDAP slapd for tests: Debian's slapd (installed when missing), run in the
 * foreground as a child of the test on 127.0.0.1 with free ports for ldap:// and ldaps://, from
 * a throwaway directory holding its slapd.conf, an mdb database and TLS files. The CA and the
 * server certificate (SubjectAltName IP:127.0.0.1, DNS:localhost) are made by openssl, so what
 * the tests trust comes from OpenSSL itself, not from the code under test.
 *
 * Passwords set through Password Modify are hashed by slapd as a lab would configure it: with
 * argon2 (`moduleload argon2`, `password-hash {ARGON2}`) when the argon2 module is there, as in
 * Debian's slapd since OpenLDAP 2.5. Only where it is absent does this fall back to {SSHA}, the
 * strongest scheme slapd has built in; `passwordScheme` says which one is in use.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client } from "ldapts";
import { ensurePrograms } from "./debian-packages";
import { freePort } from "./sshd";

const SLAPD = "/usr/sbin/slapd";
const SLAPADD = "/usr/sbin/slapadd";
const MODULE_PATH = "/usr/lib/ldap";
const ARGON2_MODULE = join(MODULE_PATH, "argon2.so");
const run = promisify(execFile);

export interface SlapdOptions {
  /** Suffix of the database (default dc=laas-test,dc=example). */
  suffix?: string;
  /** RDN of the users OU made below the suffix (default ou=People). */
  usersRdn?: string;
  /** The plain LDAP port tried first (default: a free one); another is picked if it is taken. */
  ldapPort?: number;
}

export interface RunningSlapd {
  /** ldap://127.0.0.1:port (StartTLS offered). */
  readonly url: string;
  /** ldaps://127.0.0.1:port */
  readonly ldapsUrl: string;
  /** The same ldaps listener at 127.0.0.2, an address the certificate does not name. */
  readonly ldapsMismatchUrl: string;
  readonly suffix: string;
  readonly usersRdn: string;
  /** `${usersRdn},${suffix}` */
  readonly usersBase: string;
  readonly adminDn: string;
  readonly adminPassword: string;
  /**
   * A second account that may write everything (an ACL grants it, it is not the rootdn): what
   * it adds carries its DN, not adminDn, as creatorsName.
   */
  readonly writerDn: string;
  readonly writerPassword: string;
  /** The scheme slapd hashes passwords with when they are set through Password Modify. */
  readonly passwordScheme: "{ARGON2}" | "{SSHA}";
  /** The CA that signed the server certificate. */
  readonly caPem: string;
  /** A CA that did not sign it. */
  readonly otherCaPem: string;
  /** The running slapd's pid (a new one after up()). */
  readonly pid: number;
  /** What slapd wrote to stderr so far. */
  log(): string;
  /** A client bound as the admin over plain ldap:// (loopback); the caller unbinds it. */
  adminClient(): Promise<Client>;
  /** Freezes slapd (SIGSTOP): connections stay open and nothing is answered, as a hung server. */
  pause(): void;
  /** Lets a paused slapd go on (SIGCONT). */
  resume(): void;
  /** Stops slapd (its open connections are dropped, new ones refused); its data is kept. */
  down(): Promise<void>;
  /** Starts slapd again after down(), on the same ports with the same data. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

let installing: Promise<void> | null = null;

/**
 * Installs slapd when missing. The package's postinst would start a system slapd: it is kept from
 * starting, and one that got started all the same (its pid file says which) is stopped.
 */
export function ensureSlapd(): Promise<void> {
  if (existsSync(SLAPD) && existsSync(SLAPADD)) return Promise.resolve();
  installing ??= (async () => {
    await ensurePrograms([SLAPD, SLAPADD], ["slapd"], { noServiceStart: true });
    await stopSystemSlapd();
  })();
  return installing;
}

async function stopSystemSlapd(): Promise<void> {
  const pidText = await readFile("/run/slapd/slapd.pid", "utf8").catch(() => "");
  const pid = Number(pidText.trim());
  if (!Number.isInteger(pid) || pid <= 0) return;
  const name = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
  if (name.trim() !== "slapd") return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    // Already gone.
  }
}

interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
  caPem: string;
  otherCaPem: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await run("openssl", args, { cwd, timeout: 30_000 });
}

/** A throwaway CA, a server certificate it signs, and a second CA that signs nothing. */
async function makeTls(dir: string): Promise<TlsFiles> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const caExtensions = [
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ];
  for (const [name, subject] of [
    ["ca", "/CN=LaaS test CA"],
    ["other-ca", "/CN=LaaS unrelated test CA"],
  ] as const) {
    await openssl(
      ["req", "-x509", ...ec, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2"]
        .concat(["-subj", subject])
        .concat(caExtensions),
      dir,
    );
  }
  await openssl(
    ["req", "-new", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
    dir,
  );
  await writeFile(
    join(dir, "server.ext"),
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "",
    ].join("\n"),
  );
  await openssl(
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key"].concat([
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      "2",
      "-extfile",
      "server.ext",
    ]),
    dir,
  );
  return {
    caFile: join(dir, "ca.pem"),
    certFile: join(dir, "server.pem"),
    keyFile: join(dir, "server.key"),
    caPem: await readFile(join(dir, "ca.pem"), "utf8"),
    otherCaPem: await readFile(join(dir, "other-ca.pem"), "utf8"),
  };
}

interface ConfAccounts {
  adminDn: string;
  adminPassword: string;
  writerDn: string;
  passwordScheme: RunningSlapd["passwordScheme"];
}

function slapdConf(dir: string, tls: TlsFiles, suffix: string, accounts: ConfAccounts) {
  const { adminDn, adminPassword, writerDn, passwordScheme } = accounts;
  return [
    "include /etc/ldap/schema/core.schema",
    "include /etc/ldap/schema/cosine.schema",
    "include /etc/ldap/schema/nis.schema",
    "include /etc/ldap/schema/inetorgperson.schema",
    `pidfile ${join(dir, "slapd.pid")}`,
    `argsfile ${join(dir, "slapd.args")}`,
    `modulepath ${MODULE_PATH}`,
    "moduleload back_mdb",
    ...(passwordScheme === "{ARGON2}" ? ["moduleload argon2"] : []),
    `TLSCACertificateFile ${tls.caFile}`,
    `TLSCertificateFile ${tls.certFile}`,
    `TLSCertificateKeyFile ${tls.keyFile}`,
    `password-hash ${passwordScheme}`,
    "database mdb",
    `suffix "${suffix}"`,
    `rootdn "${adminDn}"`,
    `rootpw ${adminPassword}`,
    `directory ${join(dir, "db")}`,
    "maxsize 104857600",
    // Users may bind with their password, but nobody reads it except the admin (rootdn); the
    // writer may set it (Password Modify needs write access to userPassword).
    `access to attrs=userPassword by self write by dn.exact="${writerDn}" write by anonymous auth by * none`,
    `access to * by dn.exact="${writerDn}" write by * read`,
    "",
  ].join("\n");
}

function seedLdif(suffix: string, usersRdn: string, writerDn: string, writerPassword: string) {
  const [firstRdn] = suffix.split(",");
  const [topType, topValue] = (firstRdn ?? "").split("=");
  if (topType?.toLowerCase() !== "dc" || !topValue) {
    throw new Error(`the test suffix must start with dc=…: ${suffix}`);
  }
  const [ouType, ouValue] = usersRdn.split("=");
  if (ouType?.toLowerCase() !== "ou" || !ouValue) throw new Error(`usersRdn must be ou=…`);
  return [
    `dn: ${suffix}`,
    "objectClass: top",
    "objectClass: dcObject",
    "objectClass: organization",
    `dc: ${topValue}`,
    "o: LaaS test directory",
    "",
    `dn: ${usersRdn},${suffix}`,
    "objectClass: top",
    "objectClass: organizationalUnit",
    `ou: ${ouValue}`,
    "",
    `dn: ${writerDn}`,
    "objectClass: top",
    "objectClass: organizationalRole",
    "objectClass: simpleSecurityObject",
    "cn: writer",
    // In clear: slapd compares a value without a scheme as is; a throwaway directory's account.
    `userPassword: ${writerPassword}`,
    "",
  ].join("\n");
}

/** Resolves once something accepts TCP connections at address:port. */
function accepts(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

interface Launched {
  process: ChildProcess;
  log: () => string;
  exited: Promise<void>;
}

async function launch(configFile: string, listeners: string[], waitFor: [string, number][]) {
  // -d: stay in the foreground (the test owns the process) and log to stderr. Level 32768
  // ("none") keeps only what slapd always says, a failed bind among it; level 0 silences even
  // that, and a port taken between pick and start would then look like any other exit.
  const child = spawn(SLAPD, ["-d", "32768", "-f", configFile, "-h", listeners.join(" ")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  let exitedWith: string | null = null;
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    log += chunk;
  });
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exitedWith = String(code ?? signal);
      resolve();
    }),
  );
  const deadline = Date.now() + 15_000;
  for (const [address, port] of waitFor) {
    while (!(await accepts(address, port))) {
      if (exitedWith !== null) throw new Error(`slapd exited (${exitedWith}) at start:\n${log}`);
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`slapd did not listen on ${address}:${port} within 15s:\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { process: child, log: () => log, exited } satisfies Launched;
}

/** Starts slapd with a seeded users OU; retries with other ports if a pick was taken. */
export async function startSlapd(options: SlapdOptions = {}): Promise<RunningSlapd> {
  await ensureSlapd();
  const suffix = options.suffix ?? "dc=laas-test,dc=example";
  const usersRdn = options.usersRdn ?? "ou=People";
  const adminDn = `cn=admin,${suffix}`;
  // Base64url: no character slapd.conf or LDIF would read as syntax.
  const adminPassword = randomBytes(18).toString("base64url");
  const writerDn = `cn=writer,${suffix}`;
  const writerPassword = randomBytes(18).toString("base64url");
  // After ensureSlapd: the module comes with the package.
  const passwordScheme = existsSync(ARGON2_MODULE) ? "{ARGON2}" : "{SSHA}";
  const dir = await mkdtemp(join(tmpdir(), "laas-slapd-"));
  try {
    const tls = await makeTls(dir);
    await mkdir(join(dir, "db"));
    const configFile = join(dir, "slapd.conf");
    const accounts = { adminDn, adminPassword, writerDn, passwordScheme } as const;
    await writeFile(configFile, slapdConf(dir, tls, suffix, accounts), { mode: 0o600 });
    await writeFile(join(dir, "seed.ldif"), seedLdif(suffix, usersRdn, writerDn, writerPassword), {
      mode: 0o600,
    });
    await run(SLAPADD, ["-f", configFile, "-l", join(dir, "seed.ldif")], { timeout: 30_000 });

    for (let attempt = 1; ; attempt++) {
      const ldapPort =
        attempt === 1 && options.ldapPort ? options.ldapPort : await freePort("127.0.0.1");
      let ldapsPort = await freePort("127.0.0.1");
      // Two picks may return one port: the first was free again when the second was asked.
      while (ldapsPort === ldapPort) ldapsPort = await freePort("127.0.0.1");
      try {
        const listeners = [
          `ldap://127.0.0.1:${ldapPort}/`,
          `ldaps://127.0.0.1:${ldapsPort}/`,
          `ldaps://127.0.0.2:${ldapsPort}/`,
        ];
        const waitFor: [string, number][] = [
          ["127.0.0.1", ldapPort],
          ["127.0.0.1", ldapsPort],
          ["127.0.0.2", ldapsPort],
        ];
        const launched = await launch(configFile, listeners, waitFor);
        const relaunch = () => launch(configFile, listeners, waitFor);
        return running(launched, dir, relaunch, {
          url: `ldap://127.0.0.1:${ldapPort}`,
          ldapsUrl: `ldaps://127.0.0.1:${ldapsPort}`,
          ldapsMismatchUrl: `ldaps://127.0.0.2:${ldapsPort}`,
          suffix,
          usersRdn,
          usersBase: `${usersRdn},${suffix}`,
          adminDn,
          adminPassword,
          writerDn,
          writerPassword,
          passwordScheme,
          caPem: tls.caPem,
          otherCaPem: tls.otherCaPem,
        });
      } catch (error) {
        const portTaken =
          error instanceof Error && /bind|address already in use/i.test(error.message);
        if (!portTaken || attempt >= 5) throw error;
      }
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

type Endpoints = Omit<
  RunningSlapd,
  "pid" | "log" | "adminClient" | "pause" | "resume" | "down" | "up" | "stop"
>;

function running(
  first: Launched,
  dir: string,
  relaunch: () => Promise<Launched>,
  endpoints: Endpoints,
): RunningSlapd {
  if (first.process.pid === undefined) throw new Error("slapd has no pid");
  let launched: Launched | null = first;
  let earlierLogs = "";
  // If the test process dies without stopping it, take slapd along rather than leak it.
  const killOnExit = (): void => {
    launched?.process.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  const terminate = async (): Promise<void> => {
    const current = launched;
    if (!current) return;
    launched = null;
    earlierLogs += current.log();
    // A paused slapd must go on to see the SIGTERM.
    current.process.kill("SIGCONT");
    current.process.kill("SIGTERM");
    const killed = setTimeout(() => current.process.kill("SIGKILL"), 5_000);
    await current.exited;
    clearTimeout(killed);
  };
  const signal = (name: NodeJS.Signals): void => {
    if (!launched) throw new Error("slapd is down");
    launched.process.kill(name);
  };
  return {
    ...endpoints,
    get pid() {
      const pid = launched?.process.pid;
      if (pid === undefined) throw new Error("slapd is down");
      return pid;
    },
    log: () => earlierLogs + (launched?.log() ?? ""),
    async adminClient() {
      const client = new Client({ url: endpoints.url, timeout: 10_000, connectTimeout: 10_000 });
      await client.bind(endpoints.adminDn, endpoints.adminPassword);
      return client;
    },
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
    down: terminate,
    async up() {
      if (launched) return;
      // The ports were slapd's a moment ago; sockets of the old process may linger briefly.
      for (let attempt = 1; ; attempt++) {
        try {
          launched = await relaunch();
          return;
        } catch (error) {
          if (attempt >= 20) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    },
    async stop() {
      process.off("exit", killOnExit);
      await terminate();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
