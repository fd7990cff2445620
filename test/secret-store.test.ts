/**
 * Secret fields given as secret store references (`ssm:…`, `secretsmanager:…`), fetched through
 * Powertools and the AWS SDK from SSM and Secrets Manager answered by a local endpoint
 * (test/helpers/secret-store-endpoint.ts) on 127.0.0.1, which AWS_ENDPOINT_URL points the SDK
 * at; and the IAM statements scripts/serverless-vars.cjs derives from the references.
 */
import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { installRuntimeFactory, type Runtime, resetRuntime, runtime } from "../lib/app/runtime";
import { loadAnyConfig } from "../lib/cli/config";
import type { Issue } from "../lib/config/issues";
import { loadPharosConfig } from "../lib/config/load";
import { forgetFetchedSecrets } from "../lib/config/secret-store";
import { resolveSecret, secretField } from "../lib/config/secrets";
import { ConfigError, TransientError } from "../lib/errors";
import { repoRoot } from "../sim/lab";
import { describeRun, runCommand } from "../sim/subprocess";
import {
  SECRETS_GET_SECRET_VALUE,
  type SecretStoreEndpoint,
  SSM_GET_PARAMETER,
  startSecretStoreEndpoint,
} from "./helpers/secret-store-endpoint";

/** Counts the loads of the AWS adapter: it must load only when a reference is present. */
const adapterLoads = vi.hoisted(() => ({ count: 0 }));
vi.mock("../lib/adapters/aws/secret-store", async (importOriginal) => {
  adapterLoads.count += 1;
  return importOriginal();
});

interface ServerlessVars {
  secretReferences(): {
    file: string;
    field: string;
    kind: string;
    name: string;
    reference: string;
  }[];
  secretStatements(args?: {
    resolveVariable?: (variable: string) => Promise<unknown>;
  }): Promise<Record<string, unknown>[]>;
}
const vars = createRequire(import.meta.url)("../scripts/serverless-vars.cjs") as ServerlessVars;

const awsConf = join(repoRoot, "conf", "aws");

/** A CloudFormation pseudo parameter as Fn::Sub writes it (`${AWS::Region}`). */
const pseudo = (name: string) => `\${AWS::${name}}`;

/**
 * An ed25519 private key ssh2 reads back. ssh2's generator writes about one key in six hundred
 * with a 31-byte public key (a leading zero dropped), which its own parser then refuses.
 */
function ed25519PrivateKey(): string {
  for (;;) {
    const { private: key } = ssh2.utils.generateKeyPairSync("ed25519");
    if (!(ssh2.utils.parseKey(key) instanceof Error)) return key;
  }
}

/** The values conf/aws/pharos.yaml's references hold, each one a valid secret of its kind. */
function exampleValues(): { parameters: Record<string, string>; secrets: Record<string, string> } {
  const key = () => `${ed25519PrivateKey()}\n`;
  return {
    parameters: {
      "/laas/prod/dashboard-token": `dash-${randomBytes(12).toString("hex")}`,
      "/laas/prod/smtp-pass": `smtp-${randomBytes(12).toString("hex")}`,
      "/laas/prod/fog-api-key": `fogapi-${randomBytes(12).toString("hex")}`,
      "/laas/prod/fog-user-key": `foguser-${randomBytes(12).toString("hex")}`,
      "/laas/prod/ldap-pass": `ldap-${randomBytes(12).toString("hex")}`,
    },
    secrets: {
      "laas/prod/power-key": key(),
      "laas/prod/relay-key": key(),
      "laas/prod/sealing-key": randomBytes(32).toString("base64"),
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

let endpoint: SecretStoreEndpoint;
let values: ReturnType<typeof exampleValues>;
let scratch: string;

function allValues(): string[] {
  return [...Object.values(values.parameters), ...Object.values(values.secrets)];
}

/** The message holds none of the stored values, nor any line of them. */
function expectNoValue(message: string): void {
  for (const value of allValues()) {
    expect(message).not.toContain(value.trim());
    for (const line of value.split("\n").filter((l) => l.length > 8)) {
      expect(message).not.toContain(line);
    }
  }
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

/** A copy of conf/aws (with the files it shares from conf/), edited by `edit`. */
async function awsConfigCopy(edit: (file: string, text: string) => string): Promise<string> {
  const root = await mkdtemp(join(scratch, "conf-"));
  await mkdir(join(root, "conf", "aws"), { recursive: true });
  for (const name of ["network.yaml", "domain.yaml"]) {
    await cp(join(repoRoot, "conf", name), join(root, "conf", name));
  }
  await symlink(join(repoRoot, "templates"), join(root, "templates"));
  for (const name of ["pharos.yaml", "fuel.yaml", "none.yaml", "vpn.yaml", "inventory.yaml"]) {
    const text = await readFile(join(awsConf, name), "utf8");
    await writeFile(join(root, "conf", "aws", name), edit(name, text));
  }
  return join(root, "conf", "aws", "pharos.yaml");
}

function stubAwsEnvironment(url: string): void {
  for (const name of Object.keys(process.env)) {
    if (name.startsWith("AWS_") || name.startsWith("POWERTOOLS_")) vi.stubEnv(name, undefined);
  }
  vi.stubEnv("AWS_ENDPOINT_URL", url);
  vi.stubEnv("AWS_REGION", "us-east-1");
  vi.stubEnv("AWS_ACCESS_KEY_ID", "AKIDLAASTEST");
  vi.stubEnv("AWS_SECRET_ACCESS_KEY", "laas-test-secret-access-key");
  // No profile files and no instance metadata: nothing but the endpoint above is ever asked.
  vi.stubEnv("AWS_CONFIG_FILE", join(scratch, "no-aws-config"));
  vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", join(scratch, "no-aws-credentials"));
  vi.stubEnv("AWS_EC2_METADATA_DISABLED", "true");
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "laas-secret-store-"));
  endpoint = await startSecretStoreEndpoint();
});

afterAll(async () => {
  await endpoint?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

beforeEach(async () => {
  await forgetFetchedSecrets();
  stubAwsEnvironment(endpoint.url);
  values = exampleValues();
  endpoint.parameters.clear();
  endpoint.secrets.clear();
  endpoint.denied.clear();
  endpoint.requests.length = 0;
  for (const [name, value] of Object.entries(values.parameters))
    endpoint.parameters.set(name, value);
  for (const [name, value] of Object.entries(values.secrets)) endpoint.secrets.set(name, value);
});

afterEach(() => {
  vi.unstubAllEnvs();
});

// First in the file: nothing before it may have loaded the adapter.
describe("without references", () => {
  it("loads neither the adapter nor Powertools nor the SDK clients", async () => {
    const config = await loadPharosConfig(join(repoRoot, "conf", "pharos.yaml"));
    expect(config.token.source).toMatch(/dashboard-token$/);
    expect(adapterLoads.count).toBe(0);
    expect(endpoint.requests).toEqual([]);
  });
});

describe("references", () => {
  it("resolves an SSM parameter decrypted, and a Secrets Manager secret, through the SDK", async () => {
    const parameter = await resolveSecret("ssm:/laas/prod/ldap-pass", awsConf);
    const secret = await resolveSecret("secretsmanager:laas/prod/relay-key", awsConf);
    expect(adapterLoads.count).toBe(1);
    if (!parameter.ok || !secret.ok) throw new Error("expected both to resolve");
    expect(parameter.secret.reveal()).toBe(values.parameters["/laas/prod/ldap-pass"]);
    expect(parameter.secret.source).toBe("ssm:/laas/prod/ldap-pass");
    // Trailing whitespace goes, as from a secret file: the key file's final newline.
    expect(secret.secret.reveal()).toBe(values.secrets["laas/prod/relay-key"]?.trimEnd());
    expect(secret.secret.source).toBe("secretsmanager:laas/prod/relay-key");
    expect(endpoint.requests.map((r) => [r.target, r.body])).toEqual([
      [SSM_GET_PARAMETER, { Name: "/laas/prod/ldap-pass", WithDecryption: true }],
      [SECRETS_GET_SECRET_VALUE, { SecretId: "laas/prod/relay-key" }],
    ]);
    for (const request of endpoint.requests) {
      expect(request.contentType).toBe("application/x-amz-json-1.1");
      // Signed with the credentials of the environment, for the region of the environment.
      expect(request.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDLAASTEST\/\d{8}\/us-east-1\//,
      );
    }
  });

  it("asks a Secrets Manager secret by full ARN", async () => {
    const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:laas/prod/relay-key-AbCdEf";
    endpoint.secrets.set(arn, "by-arn-value");
    const result = await resolveSecret(`secretsmanager:${arn}`, awsConf);
    expect(result.ok && result.secret.reveal()).toBe("by-arn-value");
    expect(endpoint.asked(arn)).toHaveLength(1);
  });

  it("follows the per-service endpoints AWS_ENDPOINT_URL_SSM and AWS_ENDPOINT_URL_SECRETS_MANAGER", async () => {
    vi.stubEnv("AWS_ENDPOINT_URL", `http://127.0.0.1:${await freePort()}`);
    vi.stubEnv("AWS_ENDPOINT_URL_SSM", endpoint.url);
    vi.stubEnv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint.url);
    const parameter = await resolveSecret("ssm:/laas/prod/ldap-pass", awsConf);
    const secret = await resolveSecret("secretsmanager:laas/prod/relay-key", awsConf);
    expect(parameter.ok && secret.ok).toBe(true);
    expect(endpoint.requests).toHaveLength(2);
  });

  it("loads the example AWS config, every secret fetched, as every laas command loads it", async () => {
    const config = await loadPharosConfig(join(awsConf, "pharos.yaml"), {
      allowExampleSecrets: false,
    });
    expect(config.token.reveal()).toBe(values.parameters["/laas/prod/dashboard-token"]);
    expect(config.power?.key.source).toBe("secretsmanager:laas/prod/power-key");
    expect(config.relay?.key.source).toBe("secretsmanager:laas/prod/relay-key");
    expect(config.handover?.sealingKey.source).toBe("secretsmanager:laas/prod/sealing-key");
    expect(config.handover?.email.pass?.source).toBe("ssm:/laas/prod/smtp-pass");
    const fuel = config.defaultConfigs.get("Fuel");
    expect(fuel?.fog.apiKey.reveal()).toBe(values.parameters["/laas/prod/fog-api-key"]);
    expect(fuel?.fog.userKey.source).toBe("ssm:/laas/prod/fog-user-key");
    expect(fuel?.vpn.authentication.pass.reveal()).toBe(values.parameters["/laas/prod/ldap-pass"]);
    // Every secret field of conf/aws is a reference: no file was read for any of them.
    const names = [...Object.keys(values.parameters), ...Object.keys(values.secrets)].sort();
    expect([...new Set(endpoint.requests.map((r) => r.name))].sort()).toEqual(names);
    // The CLI's loader too (an installer config with the pharos.yaml beside it).
    const { installer } = await loadAnyConfig(join(awsConf, "fuel.yaml"), {
      allowExampleSecrets: false,
    });
    expect(installer?.fog.userKey.reveal()).toBe(values.parameters["/laas/prod/fog-user-key"]);
  });
});

describe("the laas command", () => {
  it("runs on the example AWS config when its references resolve, and names the one that does not", async () => {
    // A copy, so that the store the command opens (database: ../../var/laas) is the copy's.
    const file = await awsConfigCopy((_name, text) => text);
    const laas = (...args: string[]) =>
      runCommand(process.execPath, [join(repoRoot, "bin", "laas.mjs"), ...args], {
        cwd: repoRoot,
        env: { ...process.env, LAAS_ALLOW_EXAMPLE_SECRETS: "" },
      });
    const ran = await laas("status", "--config", file, "--json");
    expect(ran.code, describeRun(ran)).toBe(0);
    expect(JSON.parse(ran.stdout)).toMatchObject({ listener: null });
    expect(new Set(endpoint.requests.map((r) => r.name)).size).toBe(8);

    endpoint.parameters.delete("/laas/prod/fog-user-key");
    const refused = await laas("status", "--config", file);
    expect(refused.code, describeRun(refused)).not.toBe(0);
    expect(refused.stderr).toContain(
      "fuel.yaml: fog.user_key: ssm:/laas/prod/fog-user-key: no such SSM parameter",
    );
    expectNoValue(refused.stdout + refused.stderr);
  });
});

describe("the cache", () => {
  it("serves a second load in the same process without asking again", async () => {
    const file = join(awsConf, "pharos.yaml");
    await loadPharosConfig(file);
    const first = endpoint.requests.length;
    // Eight references, the FOG keys named by both installer configs: each asked once.
    expect(first).toBe(8);
    await loadPharosConfig(file);
    expect(endpoint.requests).toHaveLength(first);
    await forgetFetchedSecrets();
    await loadPharosConfig(file);
    expect(endpoint.requests).toHaveLength(2 * first);
  });

  it("shares one request between concurrent fetches of a reference", async () => {
    const [a, b] = await Promise.all([
      resolveSecret("ssm:/laas/prod/ldap-pass", awsConf),
      resolveSecret("ssm:/laas/prod/ldap-pass", awsConf),
    ]);
    expect(a.ok && b.ok).toBe(true);
    expect(endpoint.asked("/laas/prod/ldap-pass")).toHaveLength(1);
  });

  it("fetches again once expired, but a warm runtime never fetches per invocation", async () => {
    // Powertools' own variable: 0 disables its cache, so only the runtime being built once
    // keeps an invocation from fetching.
    vi.stubEnv("POWERTOOLS_PARAMETERS_MAX_AGE", "0");
    const file = join(awsConf, "pharos.yaml");
    await loadPharosConfig(file);
    await loadPharosConfig(file);
    const perLoad = 10; // the FOG keys of both installer configs asked each time
    expect(endpoint.requests).toHaveLength(2 * perLoad);

    endpoint.requests.length = 0;
    let built = 0;
    installRuntimeFactory(async () => {
      built += 1;
      return { config: await loadPharosConfig(file) } as unknown as Runtime;
    });
    try {
      for (let invocation = 0; invocation < 3; invocation += 1) {
        expect((await runtime()).config.token.source).toBe("ssm:/laas/prod/dashboard-token");
      }
    } finally {
      resetRuntime();
    }
    expect(built).toBe(1);
    expect(endpoint.requests).toHaveLength(perLoad);
  });
});

describe("errors", () => {
  it("a missing parameter is a config error naming the file, the field and the reference", async () => {
    endpoint.parameters.delete("/laas/prod/ldap-pass");
    const error = await rejection(loadPharosConfig(join(awsConf, "pharos.yaml")));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(
      "vpn.yaml: authentication.pass: ssm:/laas/prod/ldap-pass: no such SSM parameter in region us-east-1 (ParameterNotFound)",
    );
    expect(error.message).toContain(
      "aws ssm put-parameter --type SecureString --name /laas/prod/ldap-pass",
    );
    expectNoValue(error.message);
  });

  it("a missing secret is a config error naming the field and the reference", async () => {
    endpoint.secrets.delete("laas/prod/sealing-key");
    const error = await rejection(loadPharosConfig(join(awsConf, "pharos.yaml")));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(
      "pharos.yaml: handover.sealing_key: secretsmanager:laas/prod/sealing-key: no such secret in region us-east-1 (ResourceNotFoundException)",
    );
    expectNoValue(error.message);
  });

  it("access denied is a config error with the IAM hint, without AWS's message", async () => {
    endpoint.denied.add("laas/prod/relay-key");
    endpoint.denied.add("/laas/prod/dashboard-token");
    const error = await rejection(loadPharosConfig(join(awsConf, "pharos.yaml")));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(
      "pharos.yaml: relay.key: secretsmanager:laas/prod/relay-key: access denied (AccessDeniedException): the role needs secretsmanager:GetSecretValue on it",
    );
    expect(error.message).toContain(
      "pharos.yaml: token: ssm:/laas/prod/dashboard-token: access denied (AccessDeniedException): the role needs ssm:GetParameter on it",
    );
    expect(error.message).toContain("kms:Decrypt");
    expect(error.message).not.toContain("is not authorized");
    expectNoValue(error.message);
  });

  it("a malformed reference is a config error naming the field, not repeating the value, asking nothing", async () => {
    const file = await awsConfigCopy((name, text) =>
      name === "vpn.yaml"
        ? text.replace("ssm:/laas/prod/ldap-pass", "ssm:laas/prod/s3cr3t pass")
        : text,
    );
    const error = await rejection(loadPharosConfig(file));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(
      'vpn.yaml: authentication.pass: starts with "ssm:" but is no valid SSM parameter reference',
    );
    expect(error.message).not.toContain("s3cr3t");
    expect(endpoint.asked("laas/prod/s3cr3t pass")).toEqual([]);
  });

  it.each([
    ["ssm:", "names no parameter"],
    ["ssm:laas/prod/x", "is a hierarchy: it must start with /"],
    ["ssm:/laas//x", "has an empty level"],
    ["ssm:/laas/x/", "has an empty level"],
    ["ssm:/laas/x:3", "may hold only letters, digits and _ . - /"],
    ["ssm:/laas/x y", "may hold only letters, digits and _ . - /"],
    [`ssm:/${Array(16).fill("l").join("/")}`, "is deeper than 15 levels"],
    [`ssm:/${"x".repeat(1011)}`, "is longer than 1011 characters"],
    ["secretsmanager:", "names no secret"],
    ["secretsmanager:laas/prod/relay key", "may hold only letters, digits and / _ + = . @ -"],
    ["secretsmanager:laas/*", "may hold only letters, digits and / _ + = . @ -"],
    [`secretsmanager:${"x".repeat(513)}`, "is longer than 512 characters"],
    ["secretsmanager:arn:aws:ssm:us-east-1:123456789012:parameter/x", "is no Secrets Manager ARN"],
    ["secretsmanager:arn:aws:secretsmanager:us-east-1:1234:secret:x", "is no Secrets Manager ARN"],
  ])("refuses %s (%s)", async (value, problem) => {
    const result = await resolveSecret(value, awsConf);
    expect(result).toEqual({ ok: false, problem: expect.stringContaining(problem) });
    expect(endpoint.requests).toEqual([]);
  });

  it("an empty value is a config error", async () => {
    endpoint.parameters.set("/laas/prod/ldap-pass", "  \n");
    endpoint.secrets.set("laas/prod/relay-key", "");
    const parameter = await resolveSecret("ssm:/laas/prod/ldap-pass", awsConf);
    const secret = await resolveSecret("secretsmanager:laas/prod/relay-key", awsConf);
    expect(parameter).toEqual({
      ok: false,
      transient: false,
      problem: "ssm:/laas/prod/ldap-pass: is empty",
    });
    expect(secret).toEqual({
      ok: false,
      transient: false,
      problem: "secretsmanager:laas/prod/relay-key: is empty",
    });
  });

  it("a binary secret is a config error", async () => {
    endpoint.secrets.set("laas/prod/relay-key", new Uint8Array([1, 2, 3]));
    const result = await resolveSecret("secretsmanager:laas/prod/relay-key", awsConf);
    expect(result).toMatchObject({ ok: false, transient: false });
    expect(!result.ok && result.problem).toContain("SecretBinary");
  });

  it("a fetched shipped example is refused like a file or an inline one", async () => {
    const shipped = await readFile(join(repoRoot, "conf", "secrets", "dashboard-token"), "utf8");
    endpoint.parameters.set("/laas/prod/dashboard-token", shipped);
    const issues: Issue[] = [];
    const policy = { allowExamples: false };
    const secret = await secretField(
      "ssm:/laas/prod/dashboard-token",
      awsConf,
      "token",
      issues,
      policy,
    );
    expect(secret.reveal()).toBe("");
    expect(issues).toEqual([
      {
        path: "token",
        message: expect.stringContaining(
          "is an example shipped in conf/secrets/ (ssm:/laas/prod/dashboard-token)",
        ),
      },
    ]);
    expect(issues[0]?.message).not.toContain(shipped.trim());
  });

  it("a refusal the SDK does not retry is a config error naming only the error", async () => {
    endpoint.failNext("/laas/prod/ldap-pass", "ValidationException");
    const result = await resolveSecret("ssm:/laas/prod/ldap-pass", awsConf);
    expect(result).toEqual({
      ok: false,
      transient: false,
      problem:
        "ssm:/laas/prod/ldap-pass: the store refused the request (ValidationException, HTTP 400)",
    });
    expect(endpoint.requests).toHaveLength(1);
  });

  it("no region is a config error", async () => {
    vi.stubEnv("AWS_REGION", undefined);
    const result = await resolveSecret("ssm:/laas/prod/ldap-pass", awsConf);
    expect(result).toMatchObject({ ok: false, transient: false });
    expect(!result.ok && result.problem).toContain("no AWS region: set AWS_REGION");
    expect(endpoint.requests).toEqual([]);
  });

  it("no credentials is a config error", async () => {
    vi.stubEnv("AWS_ACCESS_KEY_ID", undefined);
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", undefined);
    const result = await resolveSecret("ssm:/laas/prod/ldap-pass", awsConf);
    expect(result).toMatchObject({ ok: false, transient: false });
    expect(!result.ok && result.problem).toContain("no AWS credentials");
    expect(endpoint.requests).toEqual([]);
  });
});

describe("transient failures", () => {
  it("a throttle is retried by the SDK, and the value then served", async () => {
    endpoint.failNext("/laas/prod/ldap-pass", "ThrottlingException");
    endpoint.failNext("laas/prod/relay-key", "ThrottlingException");
    const parameter = await resolveSecret("ssm:/laas/prod/ldap-pass", awsConf);
    const secret = await resolveSecret("secretsmanager:laas/prod/relay-key", awsConf);
    expect(parameter.ok && parameter.secret.reveal()).toBe(
      values.parameters["/laas/prod/ldap-pass"],
    );
    expect(secret.ok).toBe(true);
    expect(endpoint.asked("/laas/prod/ldap-pass")).toHaveLength(2);
    expect(endpoint.asked("laas/prod/relay-key")).toHaveLength(2);
  });

  it("a server error is retried too", async () => {
    endpoint.failNext("laas/prod/relay-key", "InternalServerError");
    const secret = await resolveSecret("secretsmanager:laas/prod/relay-key", awsConf);
    expect(secret.ok).toBe(true);
    expect(endpoint.asked("laas/prod/relay-key")).toHaveLength(2);
  });

  it("a throttle that lasts makes the load fail transiently, naming the field and the reference", async () => {
    endpoint.failNext("/laas/prod/ldap-pass", "ThrottlingException", 10);
    const error = await rejection(loadPharosConfig(join(awsConf, "pharos.yaml")));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toBe(
      "authentication.pass: ssm:/laas/prod/ldap-pass: the store did not serve the request (ThrottlingException, HTTP 400), through the SDK's retries: try again later",
    );
    // The SDK's standard retry mode: three attempts.
    expect(endpoint.asked("/laas/prod/ldap-pass")).toHaveLength(3);
    expectNoValue(error.message);
  });

  it("an endpoint that does not answer makes the load fail transiently", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    vi.stubEnv("AWS_ENDPOINT_URL", closed);
    const error = await rejection(loadPharosConfig(join(awsConf, "pharos.yaml")));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toBe(
      `token: ssm:/laas/prod/dashboard-token: the store could not be reached (ECONNREFUSED at ${closed}), through the SDK's retries: try again later`,
    );
  });
});

describe("serverless-vars secret statements", () => {
  it("grant exactly the example AWS config's references", async () => {
    vi.stubEnv("LAAS_CONFIG", join(awsConf, "pharos.yaml"));
    const references = vars.secretReferences();
    expect(references.map((r) => `${r.file.split("/").pop()} ${r.field} ${r.reference}`)).toEqual([
      "pharos.yaml token ssm:/laas/prod/dashboard-token",
      "pharos.yaml power.key secretsmanager:laas/prod/power-key",
      "pharos.yaml relay.key secretsmanager:laas/prod/relay-key",
      "pharos.yaml handover.sealing_key secretsmanager:laas/prod/sealing-key",
      "pharos.yaml handover.email.pass ssm:/laas/prod/smtp-pass",
      "fuel.yaml fog.api_key ssm:/laas/prod/fog-api-key",
      "fuel.yaml fog.user_key ssm:/laas/prod/fog-user-key",
      "vpn.yaml authentication.pass ssm:/laas/prod/ldap-pass",
      "none.yaml fog.api_key ssm:/laas/prod/fog-api-key",
      "none.yaml fog.user_key ssm:/laas/prod/fog-user-key",
    ]);
    const sub = (arn: string) => ({ "Fn::Sub": arn });
    const ssm = (name: string) =>
      sub(`arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/${name}`);
    const secret = (name: string) =>
      sub(
        `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${name}-??????`,
      );
    expect(await vars.secretStatements()).toEqual([
      {
        Sid: "ReadSecretParameters",
        Effect: "Allow",
        Action: ["ssm:GetParameter"],
        Resource: [
          ssm("laas/prod/dashboard-token"),
          ssm("laas/prod/fog-api-key"),
          ssm("laas/prod/fog-user-key"),
          ssm("laas/prod/ldap-pass"),
          ssm("laas/prod/smtp-pass"),
        ],
      },
      {
        Sid: "ReadSecrets",
        Effect: "Allow",
        Action: ["secretsmanager:GetSecretValue"],
        Resource: [
          secret("laas/prod/power-key"),
          secret("laas/prod/relay-key"),
          secret("laas/prod/sealing-key"),
        ],
      },
    ]);
  });

  it("grant nothing for a config without references, even with a KMS key named", async () => {
    vi.stubEnv("LAAS_CONFIG", join(repoRoot, "conf", "pharos.yaml"));
    vi.stubEnv(
      "LAAS_SECRETS_KMS_KEY",
      "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    );
    expect(vars.secretReferences()).toEqual([]);
    expect(await vars.secretStatements()).toEqual([]);
  });

  it("add kms:Decrypt on a customer key from the stage param or the environment, through the services only", async () => {
    vi.stubEnv("LAAS_CONFIG", join(awsConf, "pharos.yaml"));
    const fromEnv = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const fromParam = "arn:aws:kms:eu-west-1:123456789012:key/99999999-12ab-34cd-56ef-1234567890ab";
    vi.stubEnv("LAAS_SECRETS_KMS_KEY", fromEnv);
    const decrypt = (statements: Record<string, unknown>[]) =>
      statements.find((s) => s.Sid === "DecryptSecrets");
    expect(decrypt(await vars.secretStatements())).toEqual({
      Sid: "DecryptSecrets",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: [fromEnv],
      Condition: {
        StringEquals: {
          "kms:ViaService": [
            { "Fn::Sub": `ssm.${pseudo("Region")}.amazonaws.com` },
            { "Fn::Sub": `secretsmanager.${pseudo("Region")}.amazonaws.com` },
          ],
        },
      },
    });
    const asked: string[] = [];
    const resolveVariable = async (variable: string) => {
      asked.push(variable);
      return fromParam;
    };
    expect(decrypt(await vars.secretStatements({ resolveVariable }))?.Resource).toEqual([
      fromParam,
    ]);
    expect(asked).toEqual(["param:secretsKmsKey, ''"]);
    vi.stubEnv("LAAS_SECRETS_KMS_KEY", "alias/laas-secrets");
    await expect(vars.secretStatements()).rejects.toThrow(/is no KMS key ARN/);
  });

  it("find references in inventories and VPN files, and only the services used get a condition", async () => {
    const file = await awsConfigCopy((name, text) => {
      if (name === "inventory.yaml") {
        return `${text}53:\n  name: fog-pod-53\n  power:\n    key: secretsmanager:laas/prod/pod-53-key\n`;
      }
      if (name === "vpn.yaml") return text.replace("authentication:", "authenticaion:");
      if (name === "pharos.yaml" || name === "fuel.yaml" || name === "none.yaml") {
        return text.replace(/ssm:\/laas\/prod\/[a-z-]+/g, "./secrets/x");
      }
      return text;
    });
    vi.stubEnv("LAAS_CONFIG", file);
    vi.stubEnv(
      "LAAS_SECRETS_KMS_KEY",
      "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    );
    const found = vars.secretReferences().map((r) => `${r.field} ${r.reference}`);
    expect(found).toContain("53.power.key secretsmanager:laas/prod/pod-53-key");
    expect(found).toContain("authentication.pass ssm:/laas/prod/ldap-pass");
    const statements = await vars.secretStatements();
    const ssm = statements.find((s) => s.Sid === "ReadSecretParameters");
    expect(ssm?.Resource).toEqual([
      {
        "Fn::Sub": `arn:${pseudo("Partition")}:ssm:${pseudo("Region")}:${pseudo("AccountId")}:parameter/laas/prod/ldap-pass`,
      },
    ]);
    expect(JSON.stringify(statements)).toContain("secret:laas/prod/pod-53-key-??????");

    const onlySecrets = await awsConfigCopy((_name, text) =>
      text.replace(/ssm:\/laas\/prod\/[a-z-]+/g, "./secrets/x"),
    );
    vi.stubEnv("LAAS_CONFIG", onlySecrets);
    const decrypt = (await vars.secretStatements()).find((s) => s.Sid === "DecryptSecrets");
    expect(decrypt?.Condition).toEqual({
      StringEquals: {
        "kms:ViaService": [{ "Fn::Sub": `secretsmanager.${pseudo("Region")}.amazonaws.com` }],
      },
    });
  });

  it("refuse a malformed reference, naming the file and the field but not the value", async () => {
    const file = await awsConfigCopy((name, text) =>
      name === "fuel.yaml"
        ? text.replace("ssm:/laas/prod/fog-api-key", "ssm:/laas/s3cr3t key")
        : text,
    );
    vi.stubEnv("LAAS_CONFIG", file);
    let message = "";
    try {
      vars.secretReferences();
    } catch (error) {
      message = error instanceof Error ? error.message : String(error);
    }
    expect(message).toMatch(
      /conf\/aws\/fuel\.yaml: fog\.api_key: starts with "ssm:" but is no valid SSM parameter reference/,
    );
    expect(message).not.toContain("s3cr3t");
  });
});
