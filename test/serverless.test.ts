/**
 * serverless.yml through the real `serverless` command, offline and without AWS credentials:
 * the CloudFormation it packages, the deployment package itself, and one real poll run by
 * `serverless invoke local` against the embedded store and the simulated lab.
 *
 * The commands share the repository's build directory (.esbuild/), so they run one at a time.
 */
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { loadDefinition } from "../lib/workflow/definitions";
import { isObject } from "./helpers/asl-graph";
import { bookingUntil, startListenerProcess } from "./helpers/listener-process";
import { commandEnv, laas, printedResult, serverless } from "./helpers/serverless";
import { describeRun, runCommand } from "./helpers/subprocess";
import { waitFor } from "./helpers/wait";
import { unzip } from "./helpers/zip";
import { bookingAt } from "./sim/dashboard-sim";
import { repoRoot, type SimulatedLab, startSimulatedLab } from "./sim/lab";

const SLOW = 180_000;
const STAGE_PREFIX = "laas-dev";
/** The functions this test names; serverless.yml may declare more (see declaredFunctions). */
const CORE_FUNCTIONS = [
  "poll",
  "watch",
  "startImaging",
  "awaitEvent",
  "markReady",
  "markReleased",
  "recordFailure",
];
const PHASES = ["provision", "release"] as const;

/** Serverless's logical id for a function's Lambda resource (poll → PollLambdaFunction). */
function lambdaId(name: string): string {
  return `${name.charAt(0).toUpperCase()}${name.slice(1)}LambdaFunction`;
}

/** Function name → handler, as serverless.yml declares them. */
function declaredFunctions(): Record<string, string> {
  const raw: unknown = parse(readFileSync(join(repoRoot, "serverless.yml"), "utf8"));
  const functions = z
    .object({ functions: z.record(z.string(), z.object({ handler: z.string() })) })
    .parse(raw).functions;
  return Object.fromEntries(Object.entries(functions).map(([name, f]) => [name, f.handler]));
}

const resourceSchema = z.object({
  Type: z.string(),
  Properties: z.record(z.string(), z.unknown()).default({}),
});
const templateSchema = z.object({ Resources: z.record(z.string(), resourceSchema) });
type Resource = z.infer<typeof resourceSchema>;

const getAtt = (logicalId: string) => ({ "Fn::GetAtt": [logicalId, "Arn"] });
const getAttSchema = z.object({ "Fn::GetAtt": z.tuple([z.string(), z.string()]) });

const statementSchema = z.object({
  Effect: z.string(),
  Action: z.union([z.string(), z.array(z.string())]),
  Resource: z.unknown(),
});
type Statement = z.infer<typeof statementSchema>;
const roleSchema = z.object({
  Policies: z
    .array(z.object({ PolicyDocument: z.object({ Statement: z.array(statementSchema) }) }))
    .default([]),
});

function listOf<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}

/** A resource ARN in a statement, as text: a string, or the Fn::Sub/Fn::GetAtt it is built by. */
function arnText(resource: unknown): string {
  if (typeof resource === "string") return resource;
  if (isObject(resource)) {
    const sub = resource["Fn::Sub"];
    if (typeof sub === "string") return sub;
    if (Array.isArray(sub) && typeof sub[0] === "string") return sub[0];
    const att = resource["Fn::GetAtt"];
    if (Array.isArray(att)) return `GetAtt:${att.join(".")}`;
  }
  return JSON.stringify(resource);
}

/** What the schedule rate should be: `polling` polls per second, at most once a minute. */
function expectedRate(polling: number): string {
  const minutes = Math.max(1, Math.round(1 / polling / 60));
  return minutes === 1 ? "rate(1 minute)" : `rate(${minutes} minutes)`;
}

async function packageInto(dir: string, env: Record<string, string> = {}) {
  const result = await serverless(["package", "--package", dir], env);
  expect(result.code, describeRun(result)).toBe(0);
  const json: unknown = JSON.parse(
    await readFile(join(dir, "cloudformation-template-update-stack.json"), "utf8"),
  );
  return templateSchema.parse(json).Resources;
}

const packageTypeSchema = z.object({ type: z.string().optional() });

/** The `type` of the package.json nearest to `file` in the archive, as Node looks it up. */
function nearestPackageType(archive: Map<string, Buffer>, file: string): unknown {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const manifest = archive.get(dir === "." ? "package.json" : `${dir}/package.json`);
    if (manifest) return packageTypeSchema.parse(JSON.parse(String(manifest))).type;
    if (dir === ".") return undefined;
  }
}

describe("serverless package", () => {
  let outDir: string;
  let resources: Record<string, Resource>;
  let archive: Map<string, Buffer>;
  const resource = (id: string, type: string): Resource => {
    const found = resources[id];
    expect(found?.Type, `resource ${id}`).toBe(type);
    return found!;
  };

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), "laas-sls-"));
    resources = await packageInto(outDir);
    archive = unzip(await readFile(join(outDir, "laas.zip")));
  }, SLOW);

  afterAll(async () => {
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  it("has a Lambda function for each function in serverless.yml, the core ones included", () => {
    const declared = declaredFunctions();
    expect(Object.keys(declared)).toEqual(expect.arrayContaining(CORE_FUNCTIONS));
    const lambdas = Object.entries(resources)
      .filter(([, r]) => r.Type === "AWS::Lambda::Function")
      .map(([id]) => id)
      .sort();
    expect(lambdas).toEqual(Object.keys(declared).map(lambdaId).sort());
    for (const [name, handler] of Object.entries(declared)) {
      const fn = resource(lambdaId(name), "AWS::Lambda::Function");
      expect(fn.Properties.FunctionName).toBe(`${STAGE_PREFIX}-${name}`);
      expect(fn.Properties.Runtime).toBe("nodejs22.x");
      expect(fn.Properties.Handler).toBe(handler);
    }
    expect(declared.poll).toBe("functions/poll.handler");
  });

  it.each(PHASES)("has the %s state machine, calling the step functions", (phase) => {
    const id = `${phase.charAt(0).toUpperCase()}${phase.slice(1)}StateMachine`;
    const machine = resource(id, "AWS::StepFunctions::StateMachine");
    expect(machine.Properties.StateMachineName).toBe(`${STAGE_PREFIX}-${phase}`);
    const sub = z
      .object({ "Fn::Sub": z.tuple([z.string(), z.record(z.string(), z.unknown())]) })
      .parse(machine.Properties.DefinitionString)["Fn::Sub"];
    const [text, substitutions] = sub;
    // Every ${…} is resolved by the substitutions (or is a pseudo parameter).
    for (const [, name] of text.matchAll(/\$\{([^}]+)\}/g)) {
      if (!name?.startsWith("AWS::")) expect(substitutions, text).toHaveProperty(name ?? "");
    }
    const lambdaIds = Object.fromEntries(
      Object.keys(declaredFunctions()).map((f) => [lambdaId(f), f]),
    );
    // Put the files' `Fn::GetAtt: [fn, Arn]` back in place of the substituted Lambda ARNs: what
    // is deployed must be the file, state for state.
    const restore = (value: unknown): unknown => {
      if (typeof value === "string") {
        const name = /^\$\{([^}]+)\}$/.exec(value)?.[1];
        const target = name === undefined ? undefined : substitutions[name];
        if (target === undefined) return value;
        const [logicalId, attribute] = getAttSchema.parse(target)["Fn::GetAtt"];
        expect(attribute).toBe("Arn");
        expect(lambdaIds, `${value} → ${logicalId}`).toHaveProperty(logicalId);
        return { "Fn::GetAtt": [lambdaIds[logicalId], "Arn"] };
      }
      if (Array.isArray(value)) return value.map(restore);
      if (isObject(value)) {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, restore(v)]));
      }
      return value;
    };
    const deployed = restore(JSON.parse(text));
    expect(deployed).toEqual(loadDefinition(join(repoRoot, "statemachines", `${phase}.asl.yaml`)));
    // The wait is a callback task whose Lambda gets the token (resolved by Step Functions).
    expect(deployed).toMatchObject({
      States: {
        AwaitImaging: {
          Type: "Task",
          Resource: "arn:aws:states:::lambda:invoke.waitForTaskToken",
          Parameters: {
            FunctionName: { "Fn::GetAtt": ["awaitEvent", "Arn"] },
            Payload: { "taskToken.$": "$$.Task.Token" },
          },
        },
      },
    });
    const called = Object.values(substitutions).map((s) => getAttSchema.parse(s)["Fn::GetAtt"][0]);
    expect(called).toContain(lambdaId("startImaging"));
    expect(called).toContain(lambdaId("awaitEvent"));
    expect(called).toContain(lambdaId("recordFailure"));
  });

  it.each([
    ["HostsTable", "hosts", "name"],
    ["BookingsTable", "bookings", "id"],
  ])("has the %s table, keyed by its %s' %s, billed per request", (id, kind, key) => {
    const table = resource(id, "AWS::DynamoDB::Table");
    expect(table.Properties).toMatchObject({
      TableName: `${STAGE_PREFIX}-${kind}`,
      BillingMode: "PAY_PER_REQUEST",
      KeySchema: [{ AttributeName: key, KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: key, AttributeType: "S" }],
    });
  });

  it("schedules the poll, the watcher and the sweep at the rates conf/pharos.yaml gives", async () => {
    const config = z
      .object({
        polling: z.number().positive(),
        handover: z.object({ sweep_interval: z.number().positive().optional() }),
      })
      .parse(parse(await readFile(join(repoRoot, "conf", "pharos.yaml"), "utf8")));
    const rules = Object.values(resources).filter((r) => r.Type === "AWS::Events::Rule");
    expect(rules).toHaveLength(3);
    const ruleOf = (fn: string) =>
      rules.find((r) =>
        JSON.stringify(r.Properties).includes(JSON.stringify(getAtt(lambdaId(fn)))),
      );
    expect(ruleOf("poll")?.Properties).toMatchObject({
      ScheduleExpression: expectedRate(config.polling),
      State: "ENABLED",
      Targets: [{ Arn: getAtt(lambdaId("poll")) }],
    });
    // The sweep every handover.sweep_interval seconds (an hour by default).
    const sweepMinutes = Math.round((config.handover.sweep_interval ?? 3600) / 60);
    expect(ruleOf("sweep")?.Properties).toMatchObject({
      ScheduleExpression: `rate(${sweepMinutes} minutes)`,
      State: "ENABLED",
      Targets: [{ Arn: getAtt(lambdaId("sweep")) }],
    });
    // 0.1 polls per second is every 10 s, more often than EventBridge can: once a minute.
    expect(expectedRate(0.1)).toBe("rate(1 minute)");
    // The watcher looks every 15 s by default (fog.poll_interval): once a minute there too, and
    // one watcher at a time.
    expect(ruleOf("watch")?.Properties).toMatchObject({
      ScheduleExpression: "rate(1 minute)",
      State: "ENABLED",
      Targets: [{ Arn: getAtt(lambdaId("watch")) }],
    });
    expect(resource(lambdaId("watch"), "AWS::Lambda::Function").Properties).toMatchObject({
      ReservedConcurrentExecutions: 1,
    });
  });

  it(
    "follows another config's polling",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "laas-sls-rate-"));
      try {
        const config = join(dir, "conf", "pharos.yaml");
        await mkdir(dirname(config), { recursive: true });
        await writeFile(config, "polling: 0.0016666667 # every 10 minutes\n");
        const other = await packageInto(join(dir, "out"), { LAAS_CONFIG: config });
        const rates = Object.values(other)
          .filter((r) => r.Type === "AWS::Events::Rule")
          .map((r) => r.Properties.ScheduleExpression);
        // The poll's rate follows polling; without a handover section the sweep is hourly; the
        // watcher, without watch_interval, looks once a minute.
        expect(rates.sort()).toEqual(["rate(1 minute)", "rate(10 minutes)", "rate(60 minutes)"]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    SLOW,
  );

  it("names the resources of every permission the functions have", () => {
    const role = roleSchema.parse(resource("IamRoleLambdaExecution", "AWS::IAM::Role").Properties);
    const statements = role.Policies.flatMap((p) => p.PolicyDocument.Statement);
    const granting = (prefix: string): Statement[] =>
      statements.filter((s) => listOf(s.Action).some((a) => a.startsWith(prefix)));
    const actions = (prefix: string) =>
      granting(prefix)
        .flatMap((s) => listOf(s.Action))
        .filter((a) => a.startsWith(prefix));
    const arns = (s: Statement) => listOf(s.Resource).map(arnText);

    // Task tokens are the one exception: IAM has no resource to scope SendTask* to for the
    // tokens of service-integration tasks. Nothing else may be granted on "*".
    const TOKEN_ACTIONS = [
      "states:SendTaskSuccess",
      "states:SendTaskFailure",
      "states:SendTaskHeartbeat",
    ];
    for (const statement of statements) {
      expect(statement.Effect).toBe("Allow");
      if (arns(statement).includes("*")) {
        expect(listOf(statement.Action).sort(), JSON.stringify(statement)).toEqual(
          [...TOKEN_ACTIONS].sort(),
        );
        expect(arns(statement)).toEqual(["*"]);
      }
    }
    expect(actions("states:SendTask").sort()).toEqual([...TOKEN_ACTIONS].sort());
    // The state machines' roles too (generated by serverless-step-functions).
    const roles = Object.values(resources).filter((r) => r.Type === "AWS::IAM::Role");
    expect(roles.length).toBeGreaterThanOrEqual(3);
    for (const [id, other] of Object.entries(resources)) {
      if (other.Type !== "AWS::IAM::Role" || id === "IamRoleLambdaExecution") continue;
      for (const policy of roleSchema.parse(other.Properties).Policies) {
        for (const statement of policy.PolicyDocument.Statement) {
          expect(arns(statement), JSON.stringify(statement)).not.toContain("*");
        }
      }
    }
    // What the DynamoDB and Step Functions adapters call.
    expect(actions("dynamodb:")).toEqual(
      expect.arrayContaining([
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:Scan",
      ]),
    );
    expect(actions("states:")).toEqual(
      expect.arrayContaining([
        "states:StartExecution",
        "states:DescribeExecution",
        "states:StopExecution",
      ]),
    );
    for (const statement of granting("dynamodb:")) {
      expect(listOf(statement.Resource)).toEqual([getAtt("HostsTable"), getAtt("BookingsTable")]);
    }
    for (const statement of granting("states:")) {
      if (listOf(statement.Action).every((a) => TOKEN_ACTIONS.includes(a))) continue;
      const kind = listOf(statement.Action).includes("states:StartExecution")
        ? "stateMachine"
        : "execution";
      expect(arns(statement).sort()).toEqual(
        PHASES.map(
          (phase) =>
            `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:${kind}:${STAGE_PREFIX}-${phase}${kind === "execution" ? ":*" : ""}`,
        ),
      );
    }
    const logs = granting("logs:");
    expect(logs.length).toBeGreaterThan(0);
    for (const statement of logs) {
      for (const arn of arns(statement)) {
        expect(arn).toMatch(
          new RegExp(`^arn:\\$\\{AWS::Partition\\}:logs:.*:log-group:/aws/lambda/${STAGE_PREFIX}`),
        );
      }
    }
  });

  it("tells the poll which state machines and tables to use", () => {
    const poll = resource(lambdaId("poll"), "AWS::Lambda::Function");
    const tableName = (id: string) => resource(id, "AWS::DynamoDB::Table").Properties.TableName;
    const machineName = (id: string) =>
      resource(id, "AWS::StepFunctions::StateMachine").Properties.StateMachineName;
    expect(poll.Properties.Environment).toMatchObject({
      Variables: {
        LAAS_PROVISION_STATE_MACHINE: machineName("ProvisionStateMachine"),
        LAAS_RELEASE_STATE_MACHINE: machineName("ReleaseStateMachine"),
        LAAS_HOSTS_TABLE: tableName("HostsTable"),
        LAAS_BOOKINGS_TABLE: tableName("BookingsTable"),
        LAAS_CONFIG: "conf/pharos.yaml",
      },
    });
  });

  it("packages the bundled handlers, the config and the state machines", () => {
    const names = [...archive.keys()];
    for (const file of [
      "conf/pharos.yaml",
      "statemachines/provision.asl.yaml",
      "statemachines/release.asl.yaml",
    ]) {
      expect(names).toContain(file);
    }
    for (const handler of [
      "functions/poll",
      "functions/steps",
      "functions/watch",
      "functions/sweep",
    ]) {
      expect(names.filter((n) => n === `${handler}.js` || n === `${handler}.mjs`)).toHaveLength(1);
    }
  });

  it(
    "packages handlers that load with nothing but the package, as on Lambda",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "laas-sls-task-"));
      try {
        for (const [name, content] of archive) {
          await mkdir(dirname(join(dir, name)), { recursive: true });
          await writeFile(join(dir, name), content);
        }
        for (const handler of [
          "functions/poll",
          "functions/steps",
          "functions/watch",
          "functions/sweep",
        ]) {
          const file = archive.has(`${handler}.mjs`) ? `${handler}.mjs` : `${handler}.js`;
          // Lambda takes a .js handler for an ES module only when the nearest package.json says so.
          const esm = file.endsWith(".mjs") || nearestPackageType(archive, file) === "module";
          expect(esm, `${file} is an ES module by Node's rules`).toBe(true);
          const loaded = await runCommand(
            process.execPath,
            [
              "--input-type=module",
              "-e",
              `const m = await import(${JSON.stringify(`./${file}`)}); console.log(Object.keys(m).join(","));`,
            ],
            { cwd: dir, env: commandEnv() },
          );
          expect(loaded.code, `${file}: ${describeRun(loaded)}`).toBe(0);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    SLOW,
  );
});

const reportSchema = z.object({
  seen: z.number(),
  created: z.array(z.string()),
  started: z.array(z.string()),
  errors: z.array(z.string()),
});
const statusSchema = z.object({
  hosts: z.array(z.object({ name: z.string(), state: z.string(), bookingId: z.unknown() })),
  bookings: z.array(z.object({ id: z.string(), state: z.string(), hostName: z.string() })),
});

describe("serverless invoke local -f poll (embedded)", () => {
  let workDir: string;
  let lab: SimulatedLab;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "laas-sls-invoke-"));
    // The listener of the second test polls at its start only (every 100 s): the invoked poll
    // is the one that finds the booking.
    lab = await startSimulatedLab({ workDir, timeScale: 400, pollInterval: 1, polling: 0.01 });
  }, SLOW);

  afterAll(async () => {
    await lab?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it(
    "runs one real poll that provisions a booking starting now",
    async () => {
      const reset = await laas(["reset-db", "--host", "--config", lab.configPath]);
      expect(reset.code, describeRun(reset)).toBe(0);
      const host = lab.inventory[0]!;
      const now = Date.now();
      lab.dashboard.addBooking(
        bookingAt({
          id: 4242,
          resource_id: Number(host.resourceId),
          start: new Date(now - 1_000),
          end: new Date(now + 30 * 60_000),
          installer_name: "Fuel",
          purpose: "serverless invoke local",
        }),
      );

      const invoked = await serverless(["invoke", "local", "-f", "poll"], {
        LAAS_MODE: "embedded",
        LAAS_CONFIG: lab.configPath,
      });
      expect(invoked.code, describeRun(invoked)).toBe(0);
      const report = reportSchema.parse(printedResult(invoked.stdout));
      expect(report).toMatchObject({
        seen: 1,
        created: ["4242"],
        started: ["booking-4242-provision-1"],
        errors: [],
      });

      const status = await laas(["status", "--config", lab.configPath, "--json"]);
      expect(status.code, describeRun(status)).toBe(0);
      const { hosts, bookings } = statusSchema.parse(JSON.parse(status.stdout));
      expect(bookings).toEqual([
        expect.objectContaining({ id: "4242", state: "ready", hostName: host.name }),
      ]);
      expect(hosts.find((h) => h.name === host.name)).toMatchObject({ bookingId: "4242" });
      // The host really was imaged: its deploy task ran to completion (state 4) on FOG.
      expect(lab.fog.tasks()).toEqual([
        expect.objectContaining({ hostName: host.name, typeId: 1, stateId: 4 }),
      ]);
    },
    SLOW,
  );

  it(
    "beside a running listener, hands the phase it starts to the listener and drives nothing",
    async () => {
      const listener = await startListenerProcess({
        configPath: lab.configPath,
        database: join(workDir, "db"),
      });
      try {
        // Its first poll (at its start) is over before the booking is made.
        await waitFor("the listener's first poll", () =>
          listener.process.stdout().includes('"poll done"') ? true : undefined,
        );
        const host = lab.inventory[1]!;
        const now = Date.now();
        lab.dashboard.addBooking(
          bookingAt({
            id: 4343,
            resource_id: Number(host.resourceId),
            start: new Date(now - 1_000),
            end: new Date(now + 30 * 60_000),
            installer_name: "Joid",
            purpose: "invoke local beside a listener",
          }),
        );
        const invoked = await serverless(["invoke", "local", "-f", "poll"], {
          LAAS_MODE: "embedded",
          LAAS_CONFIG: lab.configPath,
        });
        expect(invoked.code, describeRun(invoked)).toBe(0);
        expect(reportSchema.parse(printedResult(invoked.stdout))).toMatchObject({
          created: ["4343"],
          started: ["booking-4343-provision-1"],
        });
        // The invocation ran no step itself: it handed the execution to the listener.
        expect(invoked.stdout).toContain("execution handed to the listener that owns this store");
        expect(invoked.stdout).not.toContain("deploy task created");
        const ready = await bookingUntil(listener, "4343", "ready", (b) => b.state === "ready");
        expect(ready.provisionGeneration).toBe(1);
        expect(listener.process.stdout()).toContain(
          "execution started, handed over by another process",
        );
        // One engine drove it: one deploy task, one reboot.
        expect(
          lab.fog.tasks().filter((t) => t.name === "laas provision booking 4343"),
        ).toHaveLength(1);
        expect(lab.hosts.reboots.filter((r) => r.host === host.name)).toHaveLength(1);
      } finally {
        await listener.stop();
      }
    },
    SLOW,
  );
});
