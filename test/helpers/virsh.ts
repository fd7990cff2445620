/**
 * The real libvirt tools the pod tests check against: virsh with its test driver
 * (test:///default, an in-memory hypervisor private to each virsh process), virt-xml-validate
 * (libvirt's RelaxNG schemas) and xmllint. Installed from Debian when missing.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureDebianPackages } from "./debian";

export const TEST_URI = "test:///default";

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** virsh, virt-xml-validate and xmllint, from libvirt-clients, libvirt-daemon, libxml2-utils. */
export function ensureLibvirtTools(): void {
  ensureDebianPackages(
    ["virsh", "virt-xml-validate", "xmllint"],
    ["libvirt-clients", "libvirt-daemon", "libxml2-utils"],
  );
}

/** shellcheck, from Debian's package of that name. */
export function ensureShellcheck(): void {
  ensureDebianPackages(["shellcheck"], ["shellcheck"]);
}

/**
 * Runs argv without a shell and never throws on a non-zero exit. `stdin` is given to the program
 * as a file: libuv connects a child's standard input through a socket pair, which
 * `/dev/stdin` cannot be opened on (ENXIO), while sshd on the pod host gives a command a pipe,
 * which it can. A file opens like the pipe does.
 */
export function run(
  argv: readonly string[],
  options: { stdin?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Ran> {
  const [program, ...args] = argv;
  if (!program) throw new Error("empty argv");
  let input: number | "ignore" = "ignore";
  if (options.stdin !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), "laas-stdin-"));
    const file = join(dir, "stdin");
    writeFileSync(file, options.stdin);
    input = openSync(file, "r");
    rmSync(dir, { recursive: true });
  }
  return new Promise<Ran>((resolve, reject) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [input, "pipe", "pipe"],
    });
    if (typeof input === "number") closeSync(input);
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === null) reject(new Error(`${program} killed by ${signal}\n${stderr}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

export function virsh(args: readonly string[], options: { stdin?: string; cwd?: string } = {}) {
  return run(["virsh", "-c", TEST_URI, ...args], options);
}

/** virt-xml-validate against libvirt's schema for `kind`. */
export function validateXml(file: string, kind: "network" | "domain") {
  return run(["virt-xml-validate", file, kind]);
}

/** The string value of an XPath expression, as libxml2 parses the document. */
export async function xpath(file: string, expression: string): Promise<string> {
  const result = await run(["xmllint", "--xpath", `string(${expression})`, file]);
  if (result.code !== 0) throw new Error(`xmllint ${expression} ${file}: ${result.stderr}`);
  // xmllint ends the value with one newline of its own.
  return result.stdout.replace(/\n$/, "");
}

export function describeRan(result: Ran): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}
