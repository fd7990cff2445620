/**
 * What a function's code can call in the cloud, read off its bundle. esbuild builds the handler
 * as serverless-esbuild builds it for a cloud package (serverless.yml's target, platform, format
 * and externals, and the cloud-only plugin), but unminified and in one piece; the calls are looked
 * for in the code that survived tree-shaking:
 * - the store's methods (`.store.getBooking(`…) and the engine's (`.engine.start(`…), which are
 *   the only ways lib/ reaches DynamoDB and Step Functions (lib/ names the store `rt.store` or
 *   `runtime.store` wherever it calls it);
 * - the lab's services through the runtime (`rt.imagerFor`, `rt.power`, `rt.relay`,
 *   `rt.directoryFor`, `rt.mailer`), as lib/lifecycle names the runtime.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { build, type Plugin } from "esbuild";
import { parse } from "yaml";
import { z } from "zod";

export const STORE_METHODS = [
  "getHost",
  "listHosts",
  "createHost",
  "deleteHost",
  "updateHost",
  "getBooking",
  "listBookings",
  "createBooking",
  "deleteBooking",
  "updateBooking",
  "getVpnPerson",
  "listVpnPersons",
  "createVpnPerson",
  "updateVpnPerson",
  "getJob",
  "listJobs",
  "createJob",
  "updateJob",
  "deleteJob",
] as const;
export const ENGINE_METHODS = [
  "start",
  "stop",
  "status",
  "sendTaskSuccess",
  "sendTaskFailure",
  "sendTaskHeartbeat",
  "history",
] as const;
/** The lab's services, by the runtime's property that reaches them. */
export const LAB_SERVICES = {
  imagerFor: "FOG",
  power: "SSH",
  relay: "SSH",
  directoryFor: "LDAP",
  mailer: "SMTP",
} as const;

export interface Needs {
  store: string[];
  engine: string[];
  /** The lab's services it talks to (FOG, SSH, LDAP, SMTP). */
  lab: string[];
}

const esbuildSchema = z.object({
  custom: z.object({
    esbuild: z.object({
      target: z.string(),
      platform: z.enum(["node"]),
      format: z.enum(["esm"]),
      exclude: z.array(z.string()),
    }),
  }),
});

/** The handler's source file: `functions/poll/index.handler` → `functions/poll/index.ts`. */
export function handlerSource(handler: string): string {
  return `${handler.slice(0, handler.lastIndexOf("."))}.ts`;
}

function found(code: string, pattern: RegExp, among: readonly string[]): string[] {
  const names = new Set([...code.matchAll(pattern)].map((m) => m[1] ?? ""));
  return among.filter((name) => names.has(name));
}

/** The cloud bundle of `handler` as one unminified file. */
export async function cloudBundle(serviceDir: string, handler: string): Promise<string> {
  const raw: unknown = parse(readFileSync(join(serviceDir, "serverless.yml"), "utf8"));
  const options = esbuildSchema.parse(raw).custom.esbuild;
  const plugins: unknown = createRequire(import.meta.url)(
    join(serviceDir, "scripts", "esbuild-plugins.cjs"),
  );
  const { cloudOnly } = plugins as { cloudOnly?: Plugin };
  if (!cloudOnly) throw new Error("scripts/esbuild-plugins.cjs exports no cloudOnly plugin");
  const result = await build({
    absWorkingDir: serviceDir,
    entryPoints: [handlerSource(handler)],
    bundle: true,
    write: false,
    minify: false,
    splitting: false,
    target: options.target,
    platform: options.platform,
    format: options.format,
    external: options.exclude,
    plugins: [cloudOnly],
    outdir: join(serviceDir, ".needs"),
    logLevel: "error",
  });
  return result.outputFiles.map((file) => file.text).join("\n");
}

export function needsOf(code: string): Needs {
  const lab = found(code, /\brt\s*\.\s*(\w+)\b/g, Object.keys(LAB_SERVICES)).map(
    (property) => LAB_SERVICES[property as keyof typeof LAB_SERVICES],
  );
  return {
    store: found(code, /\.store\s*\.\s*(\w+)\s*\(/g, STORE_METHODS),
    engine: found(code, /\.engine\s*\.\s*(\w+)\s*\(/g, ENGINE_METHODS),
    lab: [...new Set(lab)].sort(),
  };
}

/** The DynamoDB actions each table needs for those store calls (updates read, then write). */
export function dynamoActions(
  needs: Needs,
): Record<"hosts" | "bookings" | "vpnPeople" | "jobs", string[]> {
  const actions = {
    hosts: new Set<string>(),
    bookings: new Set<string>(),
    vpnPeople: new Set<string>(),
    jobs: new Set<string>(),
  };
  for (const method of needs.store) {
    const table =
      method.endsWith("Host") || method.endsWith("Hosts")
        ? "hosts"
        : method.includes("VpnPerson")
          ? "vpnPeople"
          : method.endsWith("Job") || method.endsWith("Jobs")
            ? "jobs"
            : "bookings";
    if (method.startsWith("get")) actions[table].add("dynamodb:GetItem");
    if (method.startsWith("list")) actions[table].add("dynamodb:Scan");
    if (method.startsWith("create")) actions[table].add("dynamodb:PutItem");
    if (method.startsWith("delete")) actions[table].add("dynamodb:DeleteItem");
    if (method.startsWith("update")) {
      actions[table].add("dynamodb:GetItem");
      actions[table].add("dynamodb:PutItem");
    }
  }
  return {
    hosts: [...actions.hosts].sort(),
    bookings: [...actions.bookings].sort(),
    vpnPeople: [...actions.vpnPeople].sort(),
    jobs: [...actions.jobs].sort(),
  };
}

/** The Step Functions actions those engine calls need, by what IAM scopes them to. */
export function statesActions(needs: Needs): {
  stateMachines: string[];
  executions: string[];
  tokens: string[];
} {
  const of = (method: string) =>
    `states:${method === "start" ? "StartExecution" : method === "stop" ? "StopExecution" : method === "status" ? "DescribeExecution" : method === "history" ? "GetExecutionHistory" : `${method.charAt(0).toUpperCase()}${method.slice(1)}`}`;
  const actions = needs.engine.map(of);
  return {
    stateMachines: actions.filter((a) => a === "states:StartExecution"),
    executions: actions
      .filter(
        (a) =>
          a === "states:DescribeExecution" ||
          a === "states:StopExecution" ||
          a === "states:GetExecutionHistory",
      )
      .sort(),
    tokens: actions.filter((a) => a.startsWith("states:SendTask")).sort(),
  };
}
