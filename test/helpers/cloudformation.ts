/**
 * Reading what `serverless package` writes: the CloudFormation template (its resources, with the
 * template's conditions decided the way CloudFormation decides them) and serverless.yml's
 * functions.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { repoRoot } from "../../sim/lab";
import { isObject } from "./asl-graph";

const resourceSchema = z.object({
  Type: z.string(),
  Condition: z.string().optional(),
  Properties: z.record(z.string(), z.unknown()).default({}),
});
const templateSchema = z.object({
  Conditions: z.record(z.string(), z.unknown()).default({}),
  Resources: z.record(z.string(), resourceSchema),
});
export type Resource = z.infer<typeof resourceSchema>;
export type Template = z.infer<typeof templateSchema>;

export async function readTemplate(packageDir: string): Promise<Template> {
  const json: unknown = JSON.parse(
    await readFile(join(packageDir, "cloudformation-template-update-stack.json"), "utf8"),
  );
  return templateSchema.parse(json);
}

/** Serverless's logical id for a function's Lambda resource (poll → PollLambdaFunction). */
export function lambdaId(name: string): string {
  return `${name.charAt(0).toUpperCase()}${name.slice(1)}LambdaFunction`;
}

export const getAtt = (logicalId: string) => ({ "Fn::GetAtt": [logicalId, "Arn"] });
export const getAttSchema = z.object({ "Fn::GetAtt": z.tuple([z.string(), z.string()]) });

const declaredSchema = z.object({
  functions: z.record(z.string(), z.object({ handler: z.string(), role: z.string().optional() })),
});

/** Function name → its handler and role, as serverless.yml declares them. */
export function declaredFunctions(
  serviceDir = repoRoot,
): Record<string, { handler: string; role?: string }> {
  const raw: unknown = parse(readFileSync(join(serviceDir, "serverless.yml"), "utf8"));
  return declaredSchema.parse(raw).functions;
}

export function listOf<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}

/** A resource ARN in a statement, as text: a string, or the Fn::Sub/Fn::GetAtt it is built by. */
export function arnText(resource: unknown): string {
  if (typeof resource === "string") return resource;
  if (isObject(resource)) {
    const sub = resource["Fn::Sub"];
    if (typeof sub === "string") return sub;
    if (Array.isArray(sub) && typeof sub[0] === "string") return sub[0];
    const att = resource["Fn::GetAtt"];
    if (Array.isArray(att)) return `GetAtt:${att.join(".")}`;
    const ref = resource.Ref;
    if (typeof ref === "string") return `Ref:${ref}`;
  }
  return JSON.stringify(resource);
}

/** Decides a condition of the template (Fn::Equals of literals, Fn::Not, Fn::And, Fn::Or). */
export function conditionHolds(template: Template, name: string): boolean {
  const decide = (expression: unknown): boolean => {
    if (!isObject(expression)) throw new Error(`condition ${name}: ${JSON.stringify(expression)}`);
    const [[fn, args]] = Object.entries(expression) as [[string, unknown]];
    const list = Array.isArray(args) ? args : [];
    if (fn === "Condition" && typeof args === "string") return conditionHolds(template, args);
    if (fn === "Fn::Not") return !decide(list[0]);
    if (fn === "Fn::And") return list.every(decide);
    if (fn === "Fn::Or") return list.some(decide);
    if (fn === "Fn::Equals") {
      // CloudFormation compares strings; any other value is an error there.
      for (const side of list) {
        if (typeof side !== "string") {
          throw new Error(`condition ${name}: Fn::Equals of a non-string ${JSON.stringify(side)}`);
        }
      }
      return list[0] === list[1];
    }
    throw new Error(`condition ${name}: ${fn} is not decided here`);
  };
  if (!(name in template.Conditions)) throw new Error(`no condition ${name} in the template`);
  return decide(template.Conditions[name]);
}

const NO_VALUE = Symbol("AWS::NoValue");

/**
 * `value` as CloudFormation makes it: each Fn::If taken by its condition, AWS::NoValue removing
 * the property or list item it is in, Fn::Split of a literal split.
 */
export function withConditions(template: Template, value: unknown): unknown {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk).filter((item) => item !== NO_VALUE);
    if (!isObject(node)) return node;
    if (node.Ref === "AWS::NoValue") return NO_VALUE;
    const split = node["Fn::Split"];
    if (Array.isArray(split) && typeof split[0] === "string" && typeof split[1] === "string") {
      return split[1].split(split[0]);
    }
    const ifArgs = node["Fn::If"];
    if (Array.isArray(ifArgs) && typeof ifArgs[0] === "string") {
      return walk(conditionHolds(template, ifArgs[0]) ? ifArgs[1] : ifArgs[2]);
    }
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(node)) {
      const walked = walk(child);
      if (walked !== NO_VALUE) out[key] = walked;
    }
    return out;
  };
  const result = walk(value);
  return result === NO_VALUE ? undefined : result;
}

/** The resources CloudFormation creates (their condition holds), conditions applied. */
export function createdResources(template: Template): Record<string, Resource> {
  const created: Record<string, Resource> = {};
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Condition && !conditionHolds(template, resource.Condition)) continue;
    created[id] = resourceSchema.parse(withConditions(template, resource));
  }
  return created;
}
