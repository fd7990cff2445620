/**
 * `ipmitool -I lanplus`: the argv for one chassis command, and what its output means. The
 * password is never an argument: ipmitool reads it from its standard input (`-f /dev/stdin`),
 * so it is in no process list, log or error. Output is read strictly: an answer that is not one
 * of ipmitool's known lines is a ProtocolError, never a guess.
 */
import type { IpmiConfig } from "../../config/types";

export const IPMITOOL = "ipmitool";

/** ipmitool's own wait for each packet and its retries (`-N`, `-R`): about 2 s per attempt. */
const PACKET_TIMEOUT_SECONDS = 1;
const PACKET_RETRIES = 1;

/** The argv of one ipmitool command against the BMC; `command` is fixed text, never config. */
export function ipmitoolArgv(ipmi: IpmiConfig, command: readonly string[]): string[] {
  return [
    IPMITOOL,
    "-I",
    "lanplus",
    "-H",
    ipmi.address,
    "-p",
    String(ipmi.port),
    "-U",
    ipmi.user,
    "-f",
    "/dev/stdin",
    "-C",
    String(ipmi.cipherSuite),
    "-N",
    String(PACKET_TIMEOUT_SECONDS),
    "-R",
    String(PACKET_RETRIES),
    // Verbose: only then does ipmitool say why a session was not established (RAKP 2 errors).
    "-v",
    ...command,
  ];
}

/** What ipmitool reads from its standard input as the password file: the password, one line. */
export function passwordInput(ipmi: IpmiConfig): string {
  return `${ipmi.password.reveal()}\n`;
}

export const BOOTDEV_PXE = ["chassis", "bootdev", "pxe"] as const;
export const BOOTDEV_PXE_EFI = ["chassis", "bootdev", "pxe", "options=efiboot"] as const;
export const POWER_STATUS = ["chassis", "power", "status"] as const;
export const POWER_ON = ["chassis", "power", "on"] as const;
export const POWER_CYCLE = ["chassis", "power", "cycle"] as const;

/** Why an ipmitool command failed, from what it wrote on stderr. */
export type IpmiFailure =
  /** The BMC refused the login: wrong password, unknown user, a role it does not grant. */
  | { kind: "auth"; reason: string }
  /** The BMC does not offer the configured cipher suite. */
  | { kind: "cipher"; reason: string }
  /** No session: nothing answered, or the name did not resolve. Nothing was sent. */
  | { kind: "unreachable"; reason: string }
  /** The session was up and the BMC refused or failed the command itself. */
  | { kind: "refused"; reason: string };

/** Lines `-v` adds that say nothing about a failure. */
const NOISE = [
  /^Loading IANA PEN Registry/,
  /^Running Get VSO Capabilities/,
  /^Discovered IPMB address/,
  /^Invalid completion code received: Invalid command$/,
];

const NO_SESSION = /Unable to establish IPMI v2 \/ RMCP\+ session/;

export function classifyFailure(stderr: string): IpmiFailure {
  const lines = stderr
    .split("\n")
    .map((line) => line.replace(/^>\s*/, "").trim())
    .filter((line) => line !== "" && !NOISE.some((noise) => noise.test(line)));
  const text = lines.join("\n");
  if (/RAKP 2 HMAC is invalid/.test(text)) {
    return { kind: "auth", reason: "wrong password (RAKP 2 HMAC is invalid)" };
  }
  const rakp = /RAKP \d message indicates an error : (.+)/.exec(text);
  if (rakp?.[1]) {
    const said = rakp[1].trim();
    if (/unauthorized name|role|privilege|name length/i.test(said)) {
      return { kind: "auth", reason: `the BMC refused the user (${said})` };
    }
    return { kind: "unreachable", reason: `the BMC refused a session (${said})` };
  }
  const algorithm = /invalid (authentication|integrity|confidentiality) algorithm/.exec(text);
  if (algorithm || /no matching cipher suite/i.test(text)) {
    return {
      kind: "cipher",
      reason: `the BMC does not offer this cipher suite (${algorithm?.[0] ?? "no matching cipher suite"})`,
    };
  }
  const lookup = /Address lookup for (\S+) failed/.exec(text);
  if (lookup) return { kind: "unreachable", reason: `address lookup for ${lookup[1]} failed` };
  if (NO_SESSION.test(text)) return { kind: "unreachable", reason: "no answer from the BMC" };
  return { kind: "refused", reason: lines.slice(-3).join("; ") || "no error output" };
}

/** `chassis power status`: exactly one "Chassis Power is on|off" line, else null. */
export function parsePowerStatus(stdout: string): "on" | "off" | null {
  const states = stdout
    .split("\n")
    .map((line) => /^Chassis Power is (on|off)$/.exec(line.trim())?.[1])
    .filter((state) => state !== undefined);
  const [state] = states;
  return states.length === 1 && (state === "on" || state === "off") ? state : null;
}

/** What ipmitool prints when the BMC accepted each command; anything else is not an answer. */
export function acknowledged(command: readonly string[], stdout: string): boolean {
  const wanted =
    command[1] === "bootdev"
      ? /^Set Boot Device to pxe$/
      : command[2] === "on"
        ? /^Chassis Power Control: Up\/On$/
        : /^Chassis Power Control: Cycle$/;
  return stdout.split("\n").some((line) => wanted.test(line.trim()));
}
