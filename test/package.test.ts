/**
 * The deployment packages `serverless package` makes, one zip per function, looked into as Lambda
 * gets them: no secret in any, none over 1 MB, each with its own function's code only and what it
 * reads; each function's role against what its bundle calls; the lab's VPC, the state machines'
 * logs and the tracing switch; and the packaged step handlers run as Lambda runs them.
 *
 * Two packages: the defaults (conf/pharos.yaml, no VPC, no tracing), and the AWS example config
 * (conf/aws/, secrets by reference) with subnets, security groups and tracing given as params.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import dynalite from "dynalite";
import ssh2 from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createDynamoClient, ensureTables } from "../lib/adapters/aws/dynamodb-tables";
import { repoRoot } from "../sim/lab";
import { describeRun } from "../sim/subprocess";
import {
  cloudBundle,
  dynamoActions,
  handlerSource,
  type Needs,
  needsOf,
  statesActions,
} from "./helpers/bundle-needs";
import {
  arnText,
  createdResources,
  declaredFunctions,
  getAtt,
  lambdaId,
  listOf,
  type Resource,
  readTemplate,
} from "./helpers/cloudformation";
import { startSecretStoreEndpoint } from "./helpers/secret-store-endpoint";
import { commandEnv, type ServiceCopy, serverless, serviceCopy } from "./helpers/serverless";
import { unzip } from "./helpers/zip";

const SLOW = 300_000;
const STAGE_PREFIX = "laas-dev";
/** The largest zip a function may have. */
const MAX_ZIP_BYTES = 1024 * 1024;
const SUBNETS = ["subnet-0a1b2c3d", "subnet-4e5f6a7b"];
const SECURITY_GROUPS = ["sg-0123456789abcdef0"];
const AWS_CONFIG = "conf/aws/pharos.yaml";

interface Packaged {
  dir: string;
  resources: Record<string, Resource>;
  /** Function name → its zip's files. */
  zips: Map<string, Map<string, Buffer>>;
  zipBytes: Map<string, number>;
}

let service: ServiceCopy;
const functions = declaredFunctions();
const names = Object.keys(functions);
/** Each function's needs, read off its cloud bundle. */
const needs = new Map<string, Needs>();

async function packaged(args: string[], env: Record<string, string>): Promise<Packaged> {
  const dir = await mkdtemp(join(tmpdir(), "laas-package-"));
  const result = await serverless(service.dir, ["package", "--package", dir, ...args], env);
  expect(result.code, describeRun(result)).toBe(0);
  const template = await readTemplate(dir);
  const zips = new Map<string, Map<string, Buffer>>();
  const zipBytes = new Map<string, number>();
  for (const file of await readdir(dir)) {
    if (!file.endsWith(".zip")) continue;
    const bytes = await readFile(join(dir, file));
    zips.set(basename(file, ".zip"), unzip(bytes));
    zipBytes.set(basename(file, ".zip"), bytes.length);
  }
  return { dir, resources: createdResources(template), zips, zipBytes };
}

let plain: Packaged;
let aws: Packaged;

beforeAll(async () => {
  service = await serviceCopy();
  const [first] = await Promise.all([
    packaged([], {}),
    Promise.all(
      names.map(async (name) => {
        needs.set(name, needsOf(await cloudBundle(service.dir, functions[name]!.handler)));
      }),
    ),
  ]);
  plain = first;
  aws = await packaged(
    [
      "--param",
      `subnetIds=${SUBNETS.join(",")}`,
      "--param",
      `securityGroupIds=${SECURITY_GROUPS.join(",")}`,
      "--param",
      "tracing=true",
    ],
    { LAAS_CONFIG: AWS_CONFIG },
  );
}, SLOW);

afterAll(async () => {
  await Promise.all([plain, aws].map((p) => (p ? rm(p.dir, { recursive: true, force: true }) : 0)));
  await service?.remove();
});

function resourceOf(p: Packaged, id: string, type: string): Resource {
  const found = p.resources[id];
  expect(found?.Type, `resource ${id}`).toBe(type);
  return found!;
}

// ---------------------------------------------------------------------------------------------
// What is in the zips.

/** The example secrets' values: every secret file in conf/secrets/ (not the public keys). */
function shippedSecrets(): string[] {
  const dir = join(repoRoot, "conf", "secrets");
  return readdirSync(dir)
    .filter((file) => !file.endsWith(".pub") && file !== "README.md")
    .map((file) => readFileSync(join(dir, file), "utf8").trim());
}

/** A value, and each line of it long enough to be telling: a key leaked in part is found. */
function telltales(values: string[]): string[] {
  return values.flatMap((value) => [
    value,
    ...value
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line.length >= 16 && !line.startsWith("-----")),
  ]);
}

/**
 * The one private key a bundle may hold: ssh2's probe for Ed25519 support, a fixed throwaway key
 * in its source (node_modules/ssh2/lib/protocol/constants.js, `eddsaSupported`).
 */
const SSH2_PROBE_KEY = "MC4CAQAwBQYDK2VwBCIEIHKj+sVa9WcD/q2DJUJaf43Kptc8xYuUQA4bOFj9vC8T";

/** The bodies of the PEM private keys in `text` (as written, or in a JS string). */
function privateKeysIn(text: string): string[] {
  const blocks = text.matchAll(
    /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----([\s\S]*?)-----END \1PRIVATE KEY-----/g,
  );
  return [...blocks]
    .map((block) => (block[2] ?? "").replace(/\\[rn]/g, "").replace(/\s/g, ""))
    .filter((body) => /^[A-Za-z0-9+/=]{40,}$/.test(body));
}

/** Where in `zip` a secret is: files under a secrets folder or named as keys, keys, values. */
function secretsIn(zip: Map<string, Buffer>, values: string[]): string[] {
  const found: string[] = [];
  const lookFor = telltales(values);
  for (const [name, content] of zip) {
    if (/(^|\/)secrets\//.test(name) || /(^|\/)id_(rsa|ecdsa|ed25519)|\.(pem|key)$/.test(name)) {
      found.push(`${name}: a secret's file`);
    }
    const text = content.toString("latin1");
    for (const key of privateKeysIn(text)) {
      if (key !== SSH2_PROBE_KEY) found.push(`${name}: a private key`);
    }
    lookFor.forEach((value, i) => {
      if (text.includes(value)) found.push(`${name}: secret value #${i}`);
    });
  }
  return found;
}

const packageTypeSchema = z.object({ type: z.string().optional() });

/** The `type` of the package.json nearest to `file` in the archive, as Node looks it up. */
function nearestPackageType(zip: Map<string, Buffer>, file: string): unknown {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const manifest = zip.get(dir === "." ? "package.json" : `${dir}/package.json`);
    if (manifest) return packageTypeSchema.parse(JSON.parse(String(manifest))).type;
    if (dir === ".") return undefined;
  }
}

async function extract(zip: Map<string, Buffer>, dir: string): Promise<void> {
  for (const [name, content] of zip) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
}

/** Runs `script` (an ES module) with node in `cwd`, to its end. */
function runNode(
  script: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { cwd, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += String(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += String(chunk);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe.each([
  ["the default package", () => plain],
  ["the package of the AWS example config", () => aws],
])("%s", (_, current) => {
  it("has one zip per function, each at most 1 MB, named by the function's code", () => {
    const p = current();
    expect([...p.zips.keys()].sort()).toEqual([...names].sort());
    for (const name of names) {
      expect(p.zipBytes.get(name), `${name}.zip`).toBeLessThanOrEqual(MAX_ZIP_BYTES);
      const code = resourceOf(p, lambdaId(name), "AWS::Lambda::Function").Properties.Code;
      expect(JSON.stringify(code)).toContain(`/${name}.zip"`);
    }
  });

  it("holds no secret: no secret's file, no private key, no example secret's value", () => {
    const p = current();
    const values = shippedSecrets();
    expect(values.length).toBeGreaterThanOrEqual(7);
    // The look finds what it looks for: a shipped key, its body reflowed into a JS string, a
    // token, a secrets folder.
    const key = values.find((value) => value.includes("PRIVATE KEY-----"))!;
    const asString = JSON.stringify(key).replace(/\\n/g, "\\r\\n");
    const planted = new Map([
      ["a.js", Buffer.from(`const k = ${asString};`)],
      ["b.js", Buffer.from(`x(${JSON.stringify(values[0])})`)],
      ["conf/secrets/x", Buffer.from("")],
    ]);
    expect(secretsIn(planted, values).length).toBeGreaterThanOrEqual(4);
    expect(privateKeysIn(asString)).toHaveLength(1);
    for (const [name, zip] of p.zips) {
      expect(secretsIn(zip, values), `${name}.zip`).toEqual([]);
    }
  });

  it("holds its function's own bundle, the config and the templates, nothing of the others", () => {
    const p = current();
    for (const [name, zip] of p.zips) {
      const own = dirname(handlerSource(functions[name]!.handler));
      const files = [...zip.keys()];
      expect(files, name).toContain(`${own}/index.js`);
      expect(files, name).toContain("functions/package.json");
      for (const file of files.filter((f) => f.startsWith("functions/"))) {
        if (file === "functions/package.json") continue;
        expect(file.startsWith(`${own}/index.`), `${name}.zip: ${file}`).toBe(true);
        expect(file.endsWith(".js"), `${name}.zip: ${file}`).toBe(true);
      }
      expect(files, name).toContain("conf/pharos.yaml");
      expect(files, name).toContain(AWS_CONFIG);
      expect(files, name).toContain("templates/messages/handover.txt.njk");
      expect(files, name).toContain("templates/installers/fuel/deploy.sh");
      // Only the local engine reads statemachines/; no source, no source map, no node_modules.
      for (const file of files) {
        expect(file, name).toMatch(/^(functions|conf|templates)\//);
        expect(file, name).not.toMatch(/\.(ts|map)$/);
      }
    }
  });

  it("leaves the embedded default out: no embedded store, no local engine", () => {
    const p = current();
    for (const [name, zip] of p.zips) {
      const code = [...zip]
        .filter(([file]) => file.endsWith(".js"))
        .map(([, content]) => String(content))
        .join("\n");
      // keepNames keeps the class names: each would be there with its class. (The local
      // engine's error name "LocalEngine.Aborted" may be named, in the metrics' reasons.)
      for (const marker of [
        /\bLocalEngine\b(?!\.Aborted)/,
        /EmbeddedStore/,
        /aws-local-stepfunctions/,
      ]) {
        expect(marker.test(code), `${name}.zip: ${marker}`).toBe(false);
      }
      expect(code, name).toContain("LAAS_MODE=embedded is for `serverless invoke local`");
    }
  });

  it(
    "has handlers that load with nothing but the package, as on Lambda",
    async () => {
      const p = current();
      await Promise.all(
        [...p.zips].map(async ([name, zip]) => {
          const dir = await mkdtemp(join(tmpdir(), "laas-task-"));
          try {
            await extract(zip, dir);
            const file = handlerSource(functions[name]!.handler).replace(/\.ts$/, ".js");
            // Lambda takes a .js handler for an ES module only when the nearest package.json
            // says so.
            expect(nearestPackageType(zip, file), `${file} is an ES module`).toBe("module");
            const loaded = await runNode(
              `const m = await import(${JSON.stringify(`./${file}`)}); console.log(typeof m.handler);`,
              dir,
              commandEnv(),
            );
            expect(loaded.code, `${name}: ${loaded.stderr}`).toBe(0);
            expect(loaded.stdout.trim(), name).toBe("function");
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        }),
      );
    },
    SLOW,
  );

  it("logs every state of both state machines, with its data, to a log group of its own", () => {
    const p = current();
    for (const [id, name] of [
      ["ProvisionStateMachine", `${STAGE_PREFIX}-provision`],
      ["ReleaseStateMachine", `${STAGE_PREFIX}-release`],
    ] as const) {
      const machine = resourceOf(p, id, "AWS::StepFunctions::StateMachine");
      expect(machine.Properties.LoggingConfiguration).toEqual({
        Level: "ALL",
        IncludeExecutionData: true,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: getAtt(`${id}LogGroup`) } }],
      });
      expect(resourceOf(p, `${id}LogGroup`, "AWS::Logs::LogGroup").Properties).toEqual({
        LogGroupName: `/aws/vendedlogs/states/${name}`,
        RetentionInDays: 30,
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The roles.

/** The inline statements a role grants, conditions applied. */
function statementsOf(p: Packaged, role: string) {
  const properties = z
    .object({
      Policies: z.array(
        z.object({
          PolicyDocument: z.object({
            Statement: z.array(
              z.object({
                Effect: z.literal("Allow"),
                Action: z.union([z.string(), z.array(z.string())]),
                Resource: z.unknown(),
              }),
            ),
          }),
        }),
      ),
      ManagedPolicyArns: z.array(z.unknown()).default([]),
    })
    .parse(resourceOf(p, role, "AWS::IAM::Role").Properties);
  return {
    statements: properties.Policies.flatMap((policy) => policy.PolicyDocument.Statement),
    managed: properties.ManagedPolicyArns,
  };
}

const ARN = `arn:\${AWS::Partition}`;
const TABLE_ARNS: Record<string, "hosts" | "bookings" | "vpnPeople" | "jobs"> = {
  "GetAtt:HostsTable.Arn": "hosts",
  "GetAtt:BookingsTable.Arn": "bookings",
  "GetAtt:VpnPeopleTable.Arn": "vpnPeople",
  "GetAtt:JobsTable.Arn": "jobs",
};

/** What a role grants, action by action, on what (tables, state machines, log groups, "*"). */
function grants(p: Packaged, role: string): Map<string, string[]> {
  const granted = new Map<string, Set<string>>();
  for (const statement of statementsOf(p, role).statements) {
    for (const resource of listOf(statement.Resource)) {
      const arn = arnText(resource);
      const key = TABLE_ARNS[arn] ?? arn;
      const actions = granted.get(key) ?? new Set<string>();
      for (const action of listOf(statement.Action)) actions.add(action);
      granted.set(key, actions);
    }
  }
  return new Map([...granted].map(([key, actions]) => [key, [...actions].sort()]));
}

const logGroup = (name: string) =>
  `${ARN}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${STAGE_PREFIX}-${name}:*`;
const machineArn = (phase: string) =>
  `${ARN}:states:\${AWS::Region}:\${AWS::AccountId}:stateMachine:${STAGE_PREFIX}-${phase}`;
const executionArn = (phase: string) =>
  `${ARN}:states:\${AWS::Region}:\${AWS::AccountId}:execution:${STAGE_PREFIX}-${phase}:*`;

const NETWORK_INTERFACES = [
  "ec2:AssignPrivateIpAddresses",
  "ec2:CreateNetworkInterface",
  "ec2:DeleteNetworkInterface",
  "ec2:DescribeNetworkInterfaces",
  "ec2:DescribeSubnets",
  "ec2:UnassignPrivateIpAddresses",
];
const TRACES = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"];

/**
 * What the role of `name` must grant exactly: its functions' logs, the DynamoDB and Step
 * Functions actions its bundle calls, network interfaces in the lab's VPC, traces when on.
 */
function expectedGrants(
  p: Packaged,
  name: string,
  options: { vpc: boolean; tracing: boolean },
): Map<string, string[]> {
  const role = functions[name]!.role!;
  const sharing = names.filter((other) => functions[other]!.role === role);
  const of = needs.get(name)!;
  const expected = new Map<string, string[]>();
  for (const other of sharing) {
    expected.set(logGroup(other), ["logs:CreateLogStream", "logs:PutLogEvents"]);
  }
  for (const [table, actions] of Object.entries(dynamoActions(of))) {
    if (actions.length > 0) expected.set(table, actions);
  }
  const states = statesActions(of);
  if (states.stateMachines.length > 0) {
    for (const phase of ["provision", "release"]) {
      expected.set(machineArn(phase), states.stateMachines);
    }
  }
  if (states.executions.length > 0) {
    for (const phase of ["provision", "release"]) {
      expected.set(executionArn(phase), states.executions);
    }
  }
  const anywhere = [
    ...states.tokens,
    ...(options.vpc && of.lab.length > 0 ? NETWORK_INTERFACES : []),
    ...(options.tracing ? TRACES : []),
  ].sort();
  if (anywhere.length > 0) expected.set("*", anywhere);
  expect(p.resources[role], `${name}'s role ${role}`).toBeDefined();
  return expected;
}

describe("each function's role", () => {
  it("is one of its own, shared only by functions whose bundles call the same", () => {
    const byRole = new Map<string, string[]>();
    for (const name of names) {
      const role = functions[name]!.role;
      expect(role, `${name} has a role in serverless.yml`).toBeDefined();
      expect(resourceOf(plain, lambdaId(name), "AWS::Lambda::Function").Properties.Role).toEqual(
        getAtt(role!),
      );
      byRole.set(role!, [...(byRole.get(role!) ?? []), name]);
    }
    // What IAM and the network see of a function's needs.
    const grantsOf = (name: string) => {
      const of = needs.get(name)!;
      return { dynamodb: dynamoActions(of), states: statesActions(of), lab: of.lab.length > 0 };
    };
    for (const [role, sharing] of byRole) {
      for (const other of sharing) {
        expect(grantsOf(other), `${role}: ${other}`).toEqual(grantsOf(sharing[0]!));
      }
    }
    // The functions that start phases and answer waits are the ones that call those.
    const calling = (method: string) =>
      names.filter((name) => needs.get(name)!.engine.includes(method)).sort();
    expect(calling("start")).toEqual(["poll"]);
    expect(calling("sendTaskSuccess")).toEqual(["awaitEvent", "watch"]);
    expect(needs.get("markReady")!.lab).toEqual([]);
    expect(needs.get("startImaging")!.lab).toEqual(["FOG", "SSH"]);
    expect(needs.get("createVpnUser")!.lab).toEqual(["LDAP"]);
    expect(needs.get("handOver")!.lab).toEqual(["SMTP"]);
    // A status note, or the booking's job's tasks answered (the jobs API).
    expect(needs.get("postStatus")!.store).toEqual([
      "getHost",
      "getBooking",
      "updateBooking",
      "getJob",
      "updateJob",
    ]);
  });

  it.each(names)("of %s grants exactly what its bundle calls (defaults)", (name) => {
    expect(Object.fromEntries(grants(plain, functions[name]!.role!))).toEqual(
      Object.fromEntries(expectedGrants(plain, name, { vpc: false, tracing: false })),
    );
    expect(statementsOf(plain, functions[name]!.role!).managed).toEqual([]);
  });

  it.each(names)("of %s grants exactly that, in the lab's VPC and traced", (name) => {
    expect(Object.fromEntries(grants(aws, functions[name]!.role!))).toEqual(
      Object.fromEntries(expectedGrants(aws, name, { vpc: true, tracing: true })),
    );
  });

  it("reads the secrets the config names by reference, in every role (the AWS config)", async () => {
    expect(plain.resources.ConfigSecretsPolicy).toBeUndefined();
    const policy = resourceOf(aws, "ConfigSecretsPolicy", "AWS::IAM::ManagedPolicy");
    const vars: unknown = createRequire(import.meta.url)(
      join(service.dir, "scripts", "serverless-vars.cjs"),
    );
    const { secretStatements } = vars as { secretStatements: () => Promise<unknown[]> };
    const before = process.env.LAAS_CONFIG;
    process.env.LAAS_CONFIG = AWS_CONFIG;
    let statements: unknown[];
    try {
      statements = await secretStatements();
    } finally {
      if (before === undefined) delete process.env.LAAS_CONFIG;
      else process.env.LAAS_CONFIG = before;
    }
    expect(statements.length).toBeGreaterThan(0);
    expect(policy.Properties.PolicyDocument).toEqual({
      Version: "2012-10-17",
      Statement: statements,
    });
    expect(JSON.stringify(statements)).toContain("parameter/laas/prod/dashboard-token");
    for (const name of names) {
      expect(statementsOf(aws, functions[name]!.role!).managed, name).toEqual([
        { Ref: "ConfigSecretsPolicy" },
      ]);
    }
  });

  it("leaves '*' to the state machines' log deliveries and traces", () => {
    const wildcard = [
      "logs:CreateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:DescribeLogGroups",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ];
    for (const id of ["ProvisionStateMachineRole", "ReleaseStateMachineRole"]) {
      const granted = grants(aws, id);
      expect(granted.get("*"), id).toEqual(wildcard);
      // Everything else is the functions the machine calls.
      for (const [resource, actions] of granted) {
        if (resource === "*") continue;
        expect(actions, `${id} on ${resource}`).toEqual(["lambda:InvokeFunction"]);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The lab's VPC and the tracing switch.

describe("the lab's network and tracing", () => {
  it("puts exactly the functions that talk to the lab in its VPC, when it is given", () => {
    for (const name of names) {
      const inLab = needs.get(name)!.lab.length > 0;
      const fn = (p: Packaged) => resourceOf(p, lambdaId(name), "AWS::Lambda::Function").Properties;
      expect(fn(plain).VpcConfig, name).toBeUndefined();
      expect(fn(aws).VpcConfig, name).toEqual(
        inLab ? { SubnetIds: SUBNETS, SecurityGroupIds: SECURITY_GROUPS } : undefined,
      );
    }
    // The ones that must be there are.
    const inVpc = names.filter((name) => needs.get(name)!.lab.length > 0);
    expect(inVpc).toEqual(
      expect.arrayContaining(["watch", "startImaging", "buildPod", "createVpnUser", "handOver"]),
    );
    expect(inVpc).not.toContain("postStatus");
  });

  it("traces the functions and the state machines only when switched on", () => {
    for (const name of names) {
      const fn = (p: Packaged) => resourceOf(p, lambdaId(name), "AWS::Lambda::Function").Properties;
      expect(fn(plain).TracingConfig, name).toBeUndefined();
      expect(fn(aws).TracingConfig, name).toEqual({ Mode: "Active" });
    }
    for (const id of ["ProvisionStateMachine", "ReleaseStateMachine"]) {
      const machine = (p: Packaged) => resourceOf(p, id, "AWS::StepFunctions::StateMachine");
      expect(machine(plain).Properties.TracingConfiguration).toEqual({ Enabled: false });
      expect(machine(aws).Properties.TracingConfiguration).toEqual({ Enabled: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The packaged steps, run as Lambda runs them.

/**
 * An ed25519 private key ssh2 reads back (its generator writes about one key in six hundred
 * that its own parser refuses).
 */
function ed25519PrivateKey(): string {
  for (;;) {
    const { private: key } = ssh2.utils.generateKeyPairSync("ed25519");
    if (!(ssh2.utils.parseKey(key) instanceof Error)) return `${key}\n`;
  }
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

const answerSchema = z.object({
  ok: z.boolean(),
  name: z.string().optional(),
  message: z.string().optional(),
});

describe("the packaged steps, run as Lambda runs them", () => {
  it(
    "build their runtime from their own environment and the packaged config, and read the store",
    async () => {
      const endpoint = await startSecretStoreEndpoint();
      // A plain dynalite: the function signs with the credentials of its environment.
      const dynamoServer = dynalite({ createTableMs: 0 });
      await new Promise<void>((resolve) => dynamoServer.listen(0, "127.0.0.1", resolve));
      const dynamoAddress = dynamoServer.address();
      if (dynamoAddress === null || typeof dynamoAddress === "string") throw new Error("no port");
      const dynamoEndpoint = `http://127.0.0.1:${dynamoAddress.port}`;
      const work = await mkdtemp(join(tmpdir(), "laas-lambda-"));
      const values: string[] = [];
      try {
        const parameters: Record<string, string> = {
          "/laas/prod/dashboard-token": `dash-${randomBytes(12).toString("hex")}`,
          "/laas/prod/smtp-pass": `smtp-${randomBytes(12).toString("hex")}`,
          "/laas/prod/fog-api-key": `fogapi-${randomBytes(12).toString("hex")}`,
          "/laas/prod/fog-user-key": `foguser-${randomBytes(12).toString("hex")}`,
          "/laas/prod/ldap-pass": `ldap-${randomBytes(12).toString("hex")}`,
        };
        const secrets: Record<string, string> = {
          "laas/prod/power-key": ed25519PrivateKey(),
          "laas/prod/relay-key": ed25519PrivateKey(),
          "laas/prod/sealing-key": randomBytes(32).toString("base64"),
        };
        for (const [key, value] of Object.entries(parameters)) endpoint.parameters.set(key, value);
        for (const [key, value] of Object.entries(secrets)) endpoint.secrets.set(key, value);
        values.push(...Object.values(parameters), ...Object.values(secrets));

        const anyFunction = resourceOf(aws, lambdaId("markReady"), "AWS::Lambda::Function");
        const variables = z
          .object({ Variables: z.record(z.string(), z.string()) })
          .parse(anyFunction.Properties.Environment).Variables;
        const client = createDynamoClient({ endpoint: dynamoEndpoint });
        await ensureTables(client, {
          hosts: variables.LAAS_HOSTS_TABLE!,
          bookings: variables.LAAS_BOOKINGS_TABLE!,
          vpnPeople: variables.LAAS_VPN_PEOPLE_TABLE!,
          jobs: variables.LAAS_JOBS_TABLE!,
        });
        client.destroy();

        // Nothing reaches past 127.0.0.1: every AWS service the SDK could ask is pointed here.
        const nowhere = `http://127.0.0.1:${await closedPort()}`;
        const steps = names.filter((name) =>
          functions[name]!.handler.startsWith("functions/steps/"),
        );
        expect(steps.length).toBeGreaterThanOrEqual(15);
        const answers = await Promise.all(
          steps.map(async (name) => {
            const dir = join(work, name);
            await extract(aws.zips.get(name)!, dir);
            const fn = resourceOf(aws, lambdaId(name), "AWS::Lambda::Function");
            const env = z
              .object({ Variables: z.record(z.string(), z.string()) })
              .parse(fn.Properties.Environment).Variables;
            // The event of a step that has no booking any more: it must find that out in the store.
            const event = {
              bookingId: "404",
              hostName: "fog-machine-404",
              phase: "provision",
              generation: 1,
              stage: "started",
              event: "imaged",
              taskToken: "token-404",
              error: { Error: "TestError", Cause: "test" },
            };
            const context = {
              invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${STAGE_PREFIX}-${name}`,
            };
            const file = `./${handlerSource(functions[name]!.handler).replace(/\.ts$/, ".js")}`;
            const run = await runNode(
              `const { handler } = await import(${JSON.stringify(file)});
               try {
                 await handler(${JSON.stringify(event)}, ${JSON.stringify(context)});
                 console.log(JSON.stringify({ ok: true }));
               } catch (error) {
                 console.log(JSON.stringify({ ok: false, name: error.name, message: error.message }));
               }`,
              dir,
              commandEnv({
                ...env,
                AWS_REGION: "eu-west-1",
                AWS_ACCESS_KEY_ID: "AKIDLAMBDATEST",
                AWS_SECRET_ACCESS_KEY: "lambda-test-secret",
                AWS_ENDPOINT_URL: nowhere,
                AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
                AWS_ENDPOINT_URL_SSM: endpoint.url,
                AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint.url,
              }),
            );
            return { name, run };
          }),
        );
        for (const { name, run } of answers) {
          const lines = run.stdout.trim().split("\n");
          const answer = answerSchema.parse(JSON.parse(lines.at(-1) ?? "{}"));
          // Its runtime was built (config, secrets, tables, state machines) and it asked the
          // bookings table for booking 404, which is not there.
          expect(answer, `${name}: ${run.stdout}\n${run.stderr}`).toMatchObject({
            ok: false,
            name: "NotFoundError",
          });
          expect(answer.message, name).toMatch(/\b404\b/);
          expect(
            secretsIn(new Map([["output", Buffer.from(run.stdout + run.stderr)]]), values),
          ).toEqual([]);
        }
        // Each function loaded the whole config: every reference was fetched by each.
        for (const name of Object.keys(parameters)) {
          expect(endpoint.asked(name).length, name).toBeGreaterThanOrEqual(steps.length);
        }
        for (const name of Object.keys(secrets)) {
          expect(endpoint.asked(name).length, name).toBeGreaterThanOrEqual(steps.length);
        }
        for (const [name, zip] of aws.zips) expect(secretsIn(zip, values), name).toEqual([]);
      } finally {
        await rm(work, { recursive: true, force: true });
        await new Promise<void>((resolve) => dynamoServer.close(() => resolve()));
        await endpoint.close();
      }
    },
    SLOW,
  );
});
