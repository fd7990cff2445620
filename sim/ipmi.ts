/**
 * A real BMC for tests: OpenIPMI's `ipmi_sim` (Debian's openipmi, installed with ipmitool when
 * missing) answering IPMI 2.0 (RMCP+) on a loopback address and a free UDP port, with one admin
 * user. Its chassis-control hook is a shell script that keeps the power and the boot device in
 * files and appends every change it is asked for (`power 0`, `power 1`, `boot pxe`) to a log the
 * test reads. A power cycle is ipmi_sim's own: off, then on about a second later.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { ensurePrograms } from "./debian-packages";

const IPMI_SIM = "/usr/bin/ipmi_sim";
const IPMITOOL = "/usr/bin/ipmitool";
const run = promisify(execFile);

export interface IpmiSimOptions {
  /** Loopback address to listen on (default 127.0.0.1). */
  address?: string;
  user: string;
  /** Up to 20 characters, without `"` or white space (lan.conf's words). */
  password: string;
  /** The power when it starts (default off). */
  powerOn?: boolean;
}

export interface RunningIpmiSim {
  readonly address: string;
  readonly port: number;
  /** Every change the chassis hook was asked for, in order: "power 1", "boot pxe"… */
  events(): Promise<string[]>;
  /** The power as the hook holds it. */
  powerOn(): Promise<boolean>;
  /** Sets the power behind the BMC's back (the host's state when a test starts). */
  setPower(on: boolean): Promise<void>;
  /** A stuck host: the hook records a power on and leaves the power off. */
  setStuck(stuck: boolean): Promise<void>;
  /** `ipmitool chassis bootparam get 5`, as the BMC holds the next boot's flags. */
  bootFlags(): Promise<string>;
  stop(): Promise<void>;
}

let installing: Promise<void> | null = null;

/** Installs openipmi and ipmitool when missing, their init script (kernel drivers) kept from running. */
export function ensureIpmiTools(): Promise<void> {
  installing ??= ensurePrograms([IPMI_SIM, IPMITOOL], ["openipmi", "ipmitool"], {
    noServiceStart: true,
    noRecommends: true,
  });
  return installing;
}

/** A UDP port nothing is bound to on `address` right now. */
export function freeUdpPort(address = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.once("error", reject);
    socket.bind(0, address, () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** The chassis-control hook: `hook get power boot`, `hook set power 1 boot pxe`. */
function hookScript(dir: string): string {
  return `#!/bin/sh
dir='${dir}'
op=$1; shift
case $op in
  get)
    for parm in "$@"; do
      case $parm in
        power) echo "power:$(cat "$dir/power")" ;;
        boot) echo "boot:$(cat "$dir/boot")" ;;
        *) echo "$parm:0" ;;
      esac
    done ;;
  set)
    while [ $# -ge 2 ]; do
      parm=$1; value=$2; shift 2
      echo "$parm $value" >> "$dir/events"
      case $parm in
        power) if [ "$value" = 0 ] || [ ! -e "$dir/stuck" ]; then echo "$value" > "$dir/power"; fi ;;
        boot) echo "$value" > "$dir/boot" ;;
      esac
    done ;;
esac
exit 0
`;
}

function lanConf(dir: string, address: string, port: number, options: IpmiSimOptions): string {
  return `name "laas-bmc"
set_working_mc 0x20
  startlan 1
    addr ${address} ${port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "${join(dir, "chassis-control")}"
  user 2 true "${options.user}" "${options.password}" admin 10 none md2 md5 straight
`;
}

/** A BMC with chassis support (device support 0x9f), a SEL, and nothing else. */
const EMU = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
`;

/** Whether a UDP socket is bound to address:port (/proc/net/udp: hex, little-endian address). */
async function udpBound(address: string, port: number): Promise<boolean> {
  const hexAddress = address
    .split(".")
    .map((part) => Number(part).toString(16).padStart(2, "0"))
    .reverse()
    .join("")
    .toUpperCase();
  const local = `${hexAddress}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const table = await readFile("/proc/net/udp", "utf8");
  return table.split("\n").some((line) => line.trim().split(/\s+/)[1] === local);
}

export async function startIpmiSim(options: IpmiSimOptions): Promise<RunningIpmiSim> {
  if (/["\s]/.test(options.password) || [...options.password].length > 20) {
    throw new Error(
      "the simulated BMC's password must be 20 characters at most, without quotes or spaces",
    );
  }
  await ensureIpmiTools();
  const address = options.address ?? "127.0.0.1";
  const dir = await mkdtemp(join(tmpdir(), "laas-ipmi-sim-"));
  await writeFile(join(dir, "power"), options.powerOn ? "1\n" : "0\n");
  await writeFile(join(dir, "boot"), "default\n");
  await writeFile(join(dir, "events"), "");
  await writeFile(join(dir, "chassis-control"), hookScript(dir), { mode: 0o755 });
  await writeFile(join(dir, "sim.emu"), EMU);

  let child: ChildProcess | null = null;
  let port = 0;
  let output = "";
  // A port taken between the pick and the bind: pick another.
  for (let attempt = 0; attempt < 5 && child === null; attempt++) {
    port = await freeUdpPort(address);
    await writeFile(join(dir, "lan.conf"), lanConf(dir, address, port, options));
    const started = spawn(
      IPMI_SIM,
      ["-c", join(dir, "lan.conf"), "-f", join(dir, "sim.emu"), "-s", dir, "-n"],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
    );
    started.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    started.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    const until = Date.now() + 5_000;
    while (Date.now() < until && started.exitCode === null) {
      if (await udpBound(address, port)) break;
      await sleep(50);
    }
    if (started.exitCode === null && (await udpBound(address, port))) child = started;
    else started.kill("SIGKILL");
  }
  const running = child;
  if (!running) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`ipmi_sim did not start on ${address}:${port}: ${output.trim()}`);
  }

  return {
    address,
    port,
    async events() {
      const text = await readFile(join(dir, "events"), "utf8");
      return text.split("\n").filter((line) => line !== "");
    },
    async powerOn() {
      return (await readFile(join(dir, "power"), "utf8")).trim() === "1";
    },
    async setPower(on) {
      await writeFile(join(dir, "power"), on ? "1\n" : "0\n");
    },
    async setStuck(stuck) {
      if (stuck) await writeFile(join(dir, "stuck"), "");
      else await unlink(join(dir, "stuck")).catch(() => undefined);
    },
    async bootFlags() {
      const { stdout } = await run(
        IPMITOOL,
        [
          "-I",
          "lanplus",
          "-H",
          address,
          "-p",
          String(port),
          "-U",
          options.user,
          "-E",
          "-C",
          "3",
        ].concat(["chassis", "bootparam", "get", "5"]),
        { env: { ...process.env, IPMI_PASSWORD: options.password }, timeout: 20_000 },
      );
      return stdout;
    },
    async stop() {
      if (running.exitCode === null) {
        const exited = new Promise((resolve) => running.once("exit", resolve));
        running.kill("SIGTERM");
        await Promise.race([exited, sleep(2_000)]);
        if (running.exitCode === null) running.kill("SIGKILL");
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
