import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { Sha256 } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type EmbeddedDynamo,
  type StoreCredentials,
  startEmbeddedDynamo,
} from "../lib/adapters/local/embedded-dynamodb";
import { startTicksOf } from "../lib/adapters/local/process-identity";
import {
  listenerRecordPath,
  openEmbeddedStore,
  readListenerFile,
  runningListener,
} from "../lib/app/embedded-store";
import { createLogger } from "../lib/log";
import {
  keepNewFilesOwnerOnly,
  ownerOnlyFolder,
  UnsafeFolderError,
  writeOwnerOnlyFile,
} from "../lib/owner-only";
import { repoRoot, type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { type ListenerProcess, startListenerProcess } from "./helpers/listener-process";
import { type RunningProcess, runProcess, startProcess } from "./helpers/process";

const NOBODY = { uid: 65534, gid: 65534 };
const laasBin = join(repoRoot, "bin", "laas.mjs");
const childEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

function modeOf(stat: { mode: number }): number {
  return stat.mode & 0o7777;
}

/** Runs `fn` with the process umask set to `mask`, then puts the old one back. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const before = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(before);
  }
}

/** Every folder and file under `root` (itself included) with its mode. */
async function modesUnder(root: string): Promise<{ path: string; dir: boolean; mode: number }[]> {
  const found = [{ path: root, dir: true, mode: modeOf(await lstat(root)) }];
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    found.push({ path, dir: entry.isDirectory(), mode: modeOf(await lstat(path)) });
  }
  return found;
}

function expectOwnerOnly(entries: { path: string; dir: boolean; mode: number }[]): void {
  const loose = entries.filter((e) => e.mode !== (e.dir ? 0o700 : 0o600));
  expect(loose.map((e) => `${e.path} ${e.mode.toString(8)}`)).toEqual([]);
}

interface RawRequest {
  method?: string;
  target?: string;
  body?: string;
  headers?: Record<string, string>;
}

interface SignOptions {
  /** Sign this body, though another may be sent. */
  signedBody?: string;
  signingDate?: Date;
  /** Headers left out of the signature. */
  unsignable?: string[];
  /** Whether the signature carries X-Amz-Content-Sha256 (the SDK's default). */
  contentHash?: boolean;
}

/** The headers of `raw` as a client signs them with `credentials` for `endpoint`. */
async function signedHeaders(
  endpoint: string,
  credentials: StoreCredentials,
  raw: RawRequest,
  options: SignOptions = {},
): Promise<Record<string, string>> {
  const url = new URL(endpoint);
  const signer = new SignatureV4({
    service: "dynamodb",
    region: "us-east-1",
    credentials,
    sha256: Sha256,
    applyChecksum: options.contentHash ?? true,
  });
  const signed = await signer.sign(
    {
      method: raw.method ?? "POST",
      protocol: "http:",
      hostname: url.hostname,
      port: Number(url.port),
      path: "/",
      query: {},
      headers: { host: url.host, ...baseHeaders(raw) },
      body: options.signedBody ?? raw.body ?? "",
    },
    {
      ...(options.signingDate ? { signingDate: options.signingDate } : {}),
      ...(options.unsignable ? { unsignableHeaders: new Set(options.unsignable) } : {}),
    },
  );
  return signed.headers;
}

function baseHeaders(raw: RawRequest): Record<string, string> {
  return {
    "content-type": "application/x-amz-json-1.0",
    "x-amz-target": `DynamoDB_20120810.${raw.target ?? "ListTables"}`,
    ...raw.headers,
  };
}

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request from this process, exactly as given. */
function send(
  endpoint: string,
  raw: RawRequest,
  headers: Record<string, string> = baseHeaders(raw),
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const call = httpRequest(
      endpoint,
      { method: raw.method ?? "POST", headers, agent: false },
      (response) => {
        let body = "";
        response.setEncoding("utf8").on("data", (chunk: string) => {
          body += chunk;
        });
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
        );
      },
    );
    call.on("error", reject);
    call.end(raw.body ?? "");
  });
}

describe("the embedded store's endpoint", () => {
  let dynamo: EmbeddedDynamo;
  const listTables: RawRequest = { target: "ListTables", body: "{}" };

  beforeAll(async () => {
    dynamo = await startEmbeddedDynamo({ path: null });
  });
  afterAll(async () => dynamo?.close());

  const signedWith = (raw: RawRequest, credentials = dynamo.credentials, options?: SignOptions) =>
    signedHeaders(dynamo.endpoint, credentials, raw, options);

  it("answers a request signed with its own credential, and refuses one unsigned or signed with another secret", async () => {
    const good = await send(dynamo.endpoint, listTables, await signedWith(listTables));
    expect(good.status, good.body).toBe(200);
    expect(JSON.parse(good.body)).toHaveProperty("TableNames");

    const unsigned = await send(dynamo.endpoint, listTables);
    expect(unsigned.status).toBe(403);
    expect(unsigned.body).toContain("MissingAuthenticationTokenException");
    const health = await send(dynamo.endpoint, { method: "GET" }, {});
    expect(health.status).toBe(403);

    const guessed = { ...dynamo.credentials, secretAccessKey: "local" };
    const wrong = await send(dynamo.endpoint, listTables, await signedWith(listTables, guessed));
    expect(wrong.status).toBe(403);
    expect(wrong.body).toContain("the signature does not match");
  });

  it("gives the SDK's own client with another secret a 403 it reports, not retried", async () => {
    const client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: dynamo.credentials.accessKeyId, secretAccessKey: "local" },
    });
    try {
      const refused = await client.send(new ListTablesCommand({})).catch((error: unknown) => error);
      expect(refused).toMatchObject({
        name: "InvalidSignatureException",
        $metadata: { httpStatusCode: 403, attempts: 1 },
      });
    } finally {
      client.destroy();
    }
  });

  it("refuses another access key, though signed with the right secret", async () => {
    const other = { ...dynamo.credentials, accessKeyId: "local" };
    const answer = await send(dynamo.endpoint, listTables, await signedWith(listTables, other));
    expect(answer.status).toBe(403);
    expect(answer.body).toContain("UnrecognizedClientException");
  });

  it("refuses a body other than the one signed, whatever X-Amz-Content-Sha256 says", async () => {
    const sent: RawRequest = { target: "ListTables", body: '{"Limit":1}' };
    const withHash = await signedWith(sent, dynamo.credentials, { signedBody: "{}" });
    const claimed = await send(dynamo.endpoint, sent, withHash);
    expect(claimed.status).toBe(403);
    expect(claimed.body).toContain("X-Amz-Content-Sha256 is not the hash of the body received");

    const withoutHash = await signedWith(sent, dynamo.credentials, {
      signedBody: "{}",
      contentHash: false,
    });
    const swapped = await send(dynamo.endpoint, sent, withoutHash);
    expect(swapped.status).toBe(403);
    expect(swapped.body).toContain("the signature does not match");
  });

  it("refuses a request signed more than 15 minutes ago", async () => {
    const old = await signedWith(listTables, dynamo.credentials, {
      signingDate: new Date(Date.now() - 20 * 60_000),
    });
    const answer = await send(dynamo.endpoint, listTables, old);
    expect(answer.status).toBe(403);
    expect(answer.body).toContain("signed more than 15 minutes from now");
  });

  it("refuses a signature that does not cover the operation (X-Amz-Target)", async () => {
    const headers = await signedWith(listTables, dynamo.credentials, {
      unsignable: ["x-amz-target"],
    });
    expect(headers.authorization).not.toContain("x-amz-target");
    const answer = await send(dynamo.endpoint, listTables, headers);
    expect(answer.status).toBe(403);
    expect(answer.body).toContain("the signature does not cover x-amz-target");
  });

  it("refuses browsers: a request with an Origin (even a signed one) and a CORS preflight", async () => {
    const fromPage: RawRequest = { ...listTables, headers: { origin: "http://evil.example" } };
    const signed = await send(dynamo.endpoint, fromPage, await signedWith(fromPage));
    expect(signed.status).toBe(403);
    expect(signed.body).toContain("AccessDeniedException");
    expect(signed.headers["access-control-allow-origin"]).toBeUndefined();

    const preflight = await send(
      dynamo.endpoint,
      { method: "OPTIONS" },
      {
        origin: "http://evil.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-amz-target,authorization",
      },
    );
    expect(preflight.status).toBe(403);
    expect(preflight.headers["access-control-allow-origin"]).toBeUndefined();
    expect(preflight.headers["access-control-allow-methods"]).toBeUndefined();
  });
});

describe("a listener record an earlier laas wrote (no credential)", () => {
  it("is stale once its process is gone, and names a running one instead of using it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "laas-old-record-"));
    try {
      const record = (pid: number, startTicks: number | null) =>
        writeFile(
          listenerRecordPath(dir),
          JSON.stringify({ pid, startTicks, endpoint: "http://127.0.0.1:9", startedAt: "x" }),
        );
      // A pid that cannot be running (above the kernel's pid_max).
      await record(4_194_305, null);
      expect(await readListenerFile(dir)).toBeNull();
      expect(await runningListener(dir)).toBeNull();
      await record(process.pid, startTicksOf(process.pid));
      await expect(readListenerFile(dir)).rejects.toThrow(
        `a listener started by an earlier laas runs on this store (pid ${process.pid}); stop it (\`kill ${process.pid}\`)`,
      );
      await writeFile(listenerRecordPath(dir), '{"pid":"12"}');
      await expect(readListenerFile(dir)).rejects.toThrow(
        /is not a listener record this laas can use/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("owner-only folders and files, whatever the umask", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "laas-modes-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("makes a store folder 0700 under umask 000, and tightens an existing one of this user", async () => {
    const fresh = join(dir, "fresh", "store");
    await withUmask(0, () => ownerOnlyFolder(fresh, "the store folder"));
    expect(modeOf(await lstat(fresh))).toBe(0o700);

    const old = join(dir, "old-store");
    await mkdir(old);
    await chmod(old, 0o755);
    await ownerOnlyFolder(old, "the store folder");
    expect(modeOf(await lstat(old))).toBe(0o700);
  });

  it("refuses a store folder of another user, and a shared one, leaving their modes alone", async () => {
    const theirs = join(dir, "theirs");
    await mkdir(theirs);
    await chmod(theirs, 0o755);
    await chown(theirs, NOBODY.uid, NOBODY.gid);
    const refused = ownerOnlyFolder(theirs, "the store folder");
    await expect(refused).rejects.toBeInstanceOf(UnsafeFolderError);
    await expect(refused).rejects.toThrow(
      `the store folder ${theirs} belongs to uid ${NOBODY.uid}, but laas runs as uid ${process.getuid?.()}`,
    );
    expect(modeOf(await lstat(theirs))).toBe(0o755);

    for (const mode of [0o1777, 0o777]) {
      const shared = join(dir, `shared-${mode.toString(8)}`);
      await mkdir(shared);
      await chmod(shared, mode);
      await expect(ownerOnlyFolder(shared, "the store folder")).rejects.toThrow(
        /is writable by other users.*give it a folder of its own/,
      );
      expect(modeOf(await lstat(shared))).toBe(mode);
    }
  });

  it("writes a file 0600 under umask 000 and under 277, replacing a looser one", async () => {
    for (const mask of [0o000, 0o277]) {
      const path = join(dir, `record-${mask.toString(8)}.json`);
      await writeFile(path, "old");
      await chmod(path, 0o644);
      await withUmask(mask, () => writeOwnerOnlyFile(path, "new"));
      expect(modeOf(await lstat(path))).toBe(0o600);
      expect(await readFile(path, "utf8")).toBe("new");
    }
  });

  it("makes a log file 0600 in 0700 folders it creates, under umask 000 and under one that would leave it unwritable", async () => {
    for (const mask of [0o000, 0o277]) {
      const logs = join(dir, `logs-${mask.toString(8)}`);
      const file = join(logs, "nested", "laas.log");
      const logger = await withUmask(mask, async () => createLogger({ destination: file }));
      logger.info("hello");
      expect(modeOf(await lstat(logs))).toBe(0o700);
      expect(modeOf(await lstat(join(logs, "nested")))).toBe(0o700);
      expect(modeOf(await lstat(file))).toBe(0o600);
      expect(await readFile(file, "utf8")).toContain('"hello"');
    }
  });

  it("tightens an existing log file, and leaves an existing log folder (maybe shared) as it is", async () => {
    const logs = join(dir, "var-log");
    await mkdir(logs);
    await chmod(logs, 0o755);
    const file = join(logs, "laas.log");
    await writeFile(file, "");
    await chmod(file, 0o644);
    createLogger({ destination: file }).info("hello");
    expect(modeOf(await lstat(file))).toBe(0o600);
    expect(modeOf(await lstat(logs))).toBe(0o755);
  });

  it("keeps LevelDB's own files 0600 under umask 000, tightens a store left loose, and puts the umask back", async () => {
    const path = join(dir, "leveldb");
    await withUmask(0, async () => {
      const first = await startEmbeddedDynamo({ path });
      const client = new DynamoDBClient({
        endpoint: first.endpoint,
        region: "us-east-1",
        credentials: first.credentials,
      });
      try {
        await client.send(new ListTablesCommand({}));
      } finally {
        client.destroy();
        await first.close();
      }
      expect(process.umask(0)).toBe(0);
    });
    const entries = await modesUnder(path);
    expect(entries.filter((e) => !e.dir).length).toBeGreaterThan(2);
    expectOwnerOnly(entries);

    // As an older laas left it: folder 0755, files 0644.
    await chmod(path, 0o755);
    for (const entry of entries.filter((e) => !e.dir)) await chmod(entry.path, 0o644);
    const again = await startEmbeddedDynamo({ path });
    await again.close();
    expectOwnerOnly(await modesUnder(path));
  });

  it("keeps new files owner-only while held, nested holds counted", async () => {
    await withUmask(0o022, async () => {
      const outer = keepNewFilesOwnerOnly();
      const inner = keepNewFilesOwnerOnly();
      inner();
      await writeFile(join(dir, "held"), "");
      outer();
      await writeFile(join(dir, "released"), "");
    });
    expect(modeOf(await lstat(join(dir, "held")))).toBe(0o600);
    expect(modeOf(await lstat(join(dir, "released")))).toBe(0o644);
  });

  it("publishes the listener's credential in an owner-only listener.json, and shows the record without it", async () => {
    const database = join(dir, "database");
    const handle = await withUmask(0, () => openEmbeddedStore(database, { listen: true }));
    try {
      expect(modeOf(await lstat(database))).toBe(0o700);
      expect(modeOf(await lstat(listenerRecordPath(database)))).toBe(0o600);
      const file = await readListenerFile(database);
      expect(file?.credentials.secretAccessKey).toMatch(/^[\w-]{40,}$/);
      const shown = await runningListener(database);
      expect(shown).toMatchObject({ pid: process.pid, endpoint: handle.endpoint });
      expect(JSON.stringify(shown)).not.toContain(file?.credentials.secretAccessKey);
    } finally {
      await handle.close();
    }
  });
});

interface CurlAnswer {
  code: number;
  status: number;
  headers: string;
  body: string;
}

/** curl run as `nobody` (or as this user), printing the status line and headers first. */
async function curl(
  as: "nobody" | "owner",
  endpoint: string,
  raw: RawRequest,
  headers: Record<string, string>,
): Promise<CurlAnswer> {
  const args = ["-sS", "-i", "-X", raw.method ?? "POST", "--max-time", "10"];
  for (const [name, value] of Object.entries(headers)) {
    if (name !== "host") args.push("-H", `${name}: ${value}`);
  }
  if (raw.body !== undefined) args.push("--data-binary", raw.body);
  args.push(endpoint);
  const [command, ...argv] =
    as === "nobody" ? ["runuser", "-u", "nobody", "--", "curl", ...args] : ["curl", ...args];
  const result = await runProcess(command!, argv, { cwd: "/", timeoutMs: 20_000 });
  const [head = "", ...rest] = result.stdout.split("\r\n\r\n");
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head)?.[1] ?? 0);
  return { code: result.code ?? -1, status, headers: head, body: rest.join("\r\n\r\n") };
}

/** A command run as `nobody`: its exit code and what it printed. */
async function asNobody(...command: string[]) {
  const result = await runProcess("runuser", ["-u", "nobody", "--", ...command], {
    cwd: "/",
    timeoutMs: 20_000,
  });
  return { code: result.code, output: result.stdout + result.stderr };
}

describe("a running listener, seen by another user", () => {
  let workDir: string;
  let lab: SimulatedLab;
  let listener: ListenerProcess;
  let database: string;
  const started: RunningProcess[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "laas-access-"));
    // Others may enter the work folder (mkdtemp's is 0700): the store's own modes must keep them
    // out, not the folder around it.
    await chmod(workDir, 0o755);
    lab = await startSimulatedLab({ workDir });
    database = join(workDir, "db");
    const umask0 = ["/bin/sh", "-c", 'umask 000 && exec "$@"', "sh", process.execPath, laasBin];
    const reset = await runProcess(
      umask0[0]!,
      [...umask0.slice(1), "reset-db", "--host", "--config", lab.configPath],
      { cwd: repoRoot, env: childEnv, timeoutMs: 60_000 },
    );
    expect(reset.code, reset.stdout + reset.stderr).toBe(0);
    listener = await startListenerProcess({ configPath: lab.configPath, database, umask: 0 });
  });
  afterEach(() => {
    for (const each of started.splice(0)) each.kill();
  });
  afterAll(async () => {
    await listener?.kill();
    await lab?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("started with umask 000, keeps its store folder, listener.json and logs owner-only", async () => {
    expectOwnerOnly(await modesUnder(database));
    expect(modeOf(await lstat(listenerRecordPath(database)))).toBe(0o600);
    expectOwnerOnly(await modesUnder(join(workDir, "log")));
    expect(modeOf(await lstat(join(workDir, "log", "laas.log")))).toBe(0o600);
  });

  it("lets no other user read the credential, the store's files or the logs", async () => {
    // The work folder is open to nobody: only the store's own modes stand in the way.
    expect((await asNobody("ls", workDir)).code).toBe(0);
    for (const command of [
      ["cat", listenerRecordPath(database)],
      ["ls", join(database, "dynamodb")],
      ["cat", join(workDir, "log", "laas.log")],
    ]) {
      const result = await asNobody(...command);
      expect(result.code, result.output).not.toBe(0);
      expect(result.output).toContain("Permission denied");
    }
  });

  it("refuses another user's requests, unsigned or signed with a guessed secret; the owner's pass", async () => {
    const { endpoint, credentials } = listener.record;
    const scan: RawRequest = { target: "Scan", body: JSON.stringify({ TableName: "laas-hosts" }) };
    const host = lab.inventory[0]!.name;
    const rewrite: RawRequest = {
      target: "UpdateItem",
      body: JSON.stringify({
        TableName: "laas-hosts",
        Key: { name: { S: host } },
        UpdateExpression: "SET hostKey = :k, address = :a",
        ExpressionAttributeValues: {
          ":k": { S: "ssh-ed25519 AAAAattacker" },
          ":a": { S: "10.6.6.6" },
        },
      }),
    };
    const before = await listener.store.getHost(host);
    expect(before).not.toBeNull();
    const guessed = { accessKeyId: credentials.accessKeyId, secretAccessKey: "local" };
    for (const raw of [scan, rewrite]) {
      const unsigned = await curl("nobody", endpoint, raw, baseHeaders(raw));
      expect(unsigned.status, unsigned.headers + unsigned.body).toBe(403);
      expect(unsigned.body).toContain("MissingAuthenticationTokenException");
      const forged = await curl(
        "nobody",
        endpoint,
        raw,
        await signedHeaders(endpoint, guessed, raw),
      );
      expect(forged.status, forged.headers + forged.body).toBe(403);
      expect(forged.body).toContain("InvalidSignatureException");
      expect(forged.body).not.toContain(host);
    }
    expect(await listener.store.getHost(host)).toEqual(before);

    // The same requests, signed with the credential only the owner can read, are answered.
    const owners = await curl(
      "owner",
      endpoint,
      scan,
      await signedHeaders(endpoint, credentials, scan),
    );
    expect(owners.status, owners.body).toBe(200);
    expect(owners.body).toContain(host);
    expect((await listener.store.listHosts()).map((h) => h.name)).toContain(host);

    const fromPage: RawRequest = { ...scan, headers: { origin: "http://evil.example" } };
    const page = await curl(
      "owner",
      endpoint,
      fromPage,
      await signedHeaders(endpoint, credentials, fromPage),
    );
    expect(page.status).toBe(403);
    expect(page.headers.toLowerCase()).not.toContain("access-control-allow-origin");
  });

  it("`laas stop` refuses a listener.json naming a process that is not the listener, and signals nothing", async () => {
    const recordPath = listenerRecordPath(database);
    const real = await readFile(recordPath, "utf8");
    const sleeper = startProcess("sleep", ["300"], { cwd: "/" });
    started.push(sleeper);
    const stop = () =>
      runProcess(
        process.execPath,
        [laasBin, "stop", "--config", lab.configPath, "--timeout", "5"],
        {
          cwd: repoRoot,
          env: childEnv,
          timeoutMs: 60_000,
        },
      );
    try {
      const startTicks = await waitForTicks(sleeper.pid);
      // Right pid and start time (as anyone may read them in /proc), but not the listener.
      const forged = { ...JSON.parse(real), pid: sleeper.pid, startTicks };
      await writeOwnerOnlyFile(recordPath, JSON.stringify(forged));
      const refused = await stop();
      expect(refused.code, refused.stdout + refused.stderr).toBe(3);
      expect(refused.stderr).toContain(
        `pid ${sleeper.pid}, named by ${recordPath}, is not the listener of ${database}: it does not hold the store's endpoint ${listener.record.endpoint}; nothing was signalled`,
      );

      // A stale record: the pid now belongs to a process started after the listener.
      const stale = { ...forged, startTicks: startTicks - 1 };
      await writeOwnerOnlyFile(recordPath, JSON.stringify(stale));
      const reused = await stop();
      expect(reused.code, reused.stdout + reused.stderr).toBe(3);
      expect(reused.stderr).toContain(
        `pid ${sleeper.pid} now belongs to a process that started after the listener did (the pid was reused)`,
      );

      expect(isAlive(sleeper.pid)).toBe(true);
      expect(isAlive(listener.pid)).toBe(true);
    } finally {
      await writeOwnerOnlyFile(recordPath, real);
    }

    // The real record: the listener is stopped.
    const stopped = await stop();
    expect(stopped.code, stopped.stdout + stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain(`stopping listener pid ${listener.pid}`);
    expect((await listener.process.exited).code).toBe(0);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForTicks(pid: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const ticks = startTicksOf(pid);
    if (ticks !== null) return ticks;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no start time for pid ${pid}`);
}
