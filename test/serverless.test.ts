/**
 * serverless.yml through the real `serverless` command, offline and without AWS credentials:
 * the CloudFormation it packages (test/package.test.ts looks into the packages themselves and
 * the roles), and real polls run by `serverless invoke local` against the embedded store and the
 * simulated lab — the README's own commands among them.
 *
 * The commands run in a copy of the service of this file's own, one at a time: they share its
 * build directory (.esbuild/).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import type { Booking } from "../lib/domain/booking";
import type { JobRecord } from "../lib/domain/job";
import { loadDefinition } from "../lib/workflow/definitions";
import { bookingAt } from "../sim/dashboard-sim";
import { repoRoot, type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { describeRun, runCommand } from "../sim/subprocess";
import { isObject } from "./helpers/asl-graph";
import {
  declaredFunctions,
  getAtt,
  getAttSchema,
  lambdaId,
  type Resource,
  readTemplate,
} from "./helpers/cloudformation";
import { bookingUntil, startListenerProcess } from "./helpers/listener-process";
import {
  commandEnv,
  laas,
  printedResult,
  type ServiceCopy,
  serverless,
  serviceCopy,
} from "./helpers/serverless";
import { waitFor } from "./helpers/wait";

const SLOW = 240_000;
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

/** What the schedule rate should be: `polling` polls per second, at most once a minute. */
function expectedRate(polling: number): string {
  const minutes = Math.max(1, Math.round(1 / polling / 60));
  return minutes === 1 ? "rate(1 minute)" : `rate(${minutes} minutes)`;
}

let service: ServiceCopy;
beforeAll(async () => {
  service = await serviceCopy();
}, SLOW);
afterAll(async () => service?.remove());

async function packageInto(dir: string, env: Record<string, string> = {}) {
  const result = await serverless(service.dir, ["package", "--package", dir], env);
  expect(result.code, describeRun(result)).toBe(0);
  return (await readTemplate(dir)).Resources;
}

describe("serverless package", () => {
  let outDir: string;
  let resources: Record<string, Resource>;
  const resource = (id: string, type: string): Resource => {
    const found = resources[id];
    expect(found?.Type, `resource ${id}`).toBe(type);
    return found!;
  };

  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), "laas-sls-"));
    resources = await packageInto(outDir);
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
    for (const [name, { handler }] of Object.entries(declared)) {
      const fn = resource(lambdaId(name), "AWS::Lambda::Function");
      expect(fn.Properties.FunctionName).toBe(`${STAGE_PREFIX}-${name}`);
      expect(fn.Properties.Runtime).toBe("nodejs22.x");
      expect(fn.Properties.Handler).toBe(handler);
      // Each function is built from a folder of its own (see custom.esbuild.chunkNames).
      expect(handler).toMatch(new RegExp(`^functions/(steps/)?${name}/index\\.handler$`));
    }
    expect(declared.poll?.handler).toBe("functions/poll/index.handler");
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
    ["VpnPeopleTable", "vpn-people", "key"],
    ["JobsTable", "jobs", "key"],
  ])("has the %s table, keyed by its %s' %s, billed per request", (id, kind, key) => {
    const table = resource(id, "AWS::DynamoDB::Table");
    expect(table.Properties).toMatchObject({
      TableName: `${STAGE_PREFIX}-${kind}`,
      BillingMode: "PAY_PER_REQUEST",
      KeySchema: [{ AttributeName: key, KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: key, AttributeType: "S" }],
    });
  });

  it("expires finished bookings by the attribute the ending transitions set", () => {
    // A Booking field by type: renaming it in lib/domain/booking.ts breaks this line.
    const ttlAttribute: keyof Booking = "expiresAtEpochSeconds";
    expect(resource("BookingsTable", "AWS::DynamoDB::Table").Properties).toMatchObject({
      TimeToLiveSpecification: { AttributeName: ttlAttribute, Enabled: true },
    });
  });

  it("expires finished job records by the same attribute", () => {
    // A JobRecord field by type, as the booking's above.
    const ttlAttribute: keyof JobRecord = "expiresAtEpochSeconds";
    expect(resource("JobsTable", "AWS::DynamoDB::Table").Properties).toMatchObject({
      TimeToLiveSpecification: { AttributeName: ttlAttribute, Enabled: true },
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

  it("tells every function which state machines and tables to use", () => {
    const tableName = (id: string) => resource(id, "AWS::DynamoDB::Table").Properties.TableName;
    const machineName = (id: string) =>
      resource(id, "AWS::StepFunctions::StateMachine").Properties.StateMachineName;
    // Every function's cloud runtime has the Step Functions engine, which needs both names.
    for (const name of Object.keys(declaredFunctions())) {
      const fn = resource(lambdaId(name), "AWS::Lambda::Function");
      expect(fn.Properties.Environment, name).toEqual({
        Variables: {
          LAAS_PROVISION_STATE_MACHINE: machineName("ProvisionStateMachine"),
          LAAS_RELEASE_STATE_MACHINE: machineName("ReleaseStateMachine"),
          LAAS_HOSTS_TABLE: tableName("HostsTable"),
          LAAS_BOOKINGS_TABLE: tableName("BookingsTable"),
          LAAS_VPN_PEOPLE_TABLE: tableName("VpnPeopleTable"),
          LAAS_JOBS_TABLE: tableName("JobsTable"),
          LAAS_CONFIG: "conf/pharos.yaml",
        },
      });
    }
  });
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

      const invoked = await serverless(service.dir, ["invoke", "local", "-f", "poll"], {
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
        const invoked = await serverless(service.dir, ["invoke", "local", "-f", "poll"], {
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

/** The shell lines of the first code block after `heading` in README.md. */
function readmeBlock(heading: string): string[] {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const at = readme.indexOf(`\n${heading}\n`);
  expect(at, `README.md has "${heading}"`).toBeGreaterThan(-1);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(block, `a sh block under "${heading}"`).not.toBeNull();
  return (block?.[1] ?? "").split("\n").filter((line) => line.trim() !== "");
}

/** A trailing `&` (and comment): the line's command runs in the background. */
const BACKGROUND = /\s&\s*(#.*)?$/;

describe("the README's `serverless invoke local` lines", () => {
  it(
    "run as written in the service directory, and provision the simulated lab's bookings",
    async () => {
      const lines = readmeBlock("### One real poll with `serverless invoke local`");
      const [labLine, ...commands] = lines;
      expect(labLine).toMatch(BACKGROUND);
      expect(commands.join("\n")).toContain("invoke local -f poll");
      // The lab runs in the background as `&` has it, in a process group of its own for the end;
      // as someone typing the lines would, the next line waits for its config.
      const lab = spawn("bash", ["-c", (labLine ?? "").replace(BACKGROUND, "")], {
        cwd: service.dir,
        env: commandEnv(),
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let printed = "";
      lab.stdout.on("data", (chunk: Buffer) => {
        printed += String(chunk);
      });
      lab.stderr.on("data", (chunk: Buffer) => {
        printed += String(chunk);
      });
      try {
        await waitFor(
          "the simulated lab's config",
          () => (/"config":/.test(printed) ? true : undefined),
          60_000,
        );
        const ran = [];
        for (const line of commands) {
          const result = await runCommand("bash", ["-c", line], {
            cwd: service.dir,
            env: commandEnv(),
            timeoutMs: SLOW,
          });
          expect(result.code, `${line}\n${describeRun(result)}`).toBe(0);
          ran.push(result);
        }
        const invoked = ran.find((_, i) => commands[i]?.includes("invoke local"))!;
        expect(reportSchema.parse(printedResult(invoked.stdout))).toMatchObject({
          created: ["1000", "1001"],
          started: ["booking-1000-provision-1", "booking-1001-provision-1"],
          errors: [],
        });
        // `status` (the last line) shows both bookings ready.
        const status = ran.at(-1)!.stdout;
        const states = [...status.matchAll(/^(100[01])\s+\S+\s+(\S+)/gm)].map((m) => m.slice(1));
        expect(states).toEqual([
          ["1000", "ready"],
          ["1001", "ready"],
        ]);
      } finally {
        if (lab.pid !== undefined) process.kill(-lab.pid, "SIGTERM");
      }
    },
    SLOW,
  );
});
