/**
 * The demo's jobs part without running it: the passwords it masks in task messages, the kinds it
 * names, and the command line it refuses (before anything starts) with exit 2.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { maskPasswords, taskKind } from "../scripts/demo-jobs";
import { repoRoot } from "../sim/lab";
import { runProcess } from "./helpers/process";

describe("the jobs demo's task messages", () => {
  it.each([
    [
      "fog-machine-4 is ready as 50-pod at 127.0.1.11. Root password: Ab3-x.y_Z~9 Your SSH key SHA256:abc is installed for root.",
      "fog-machine-4 is ready as 50-pod at 127.0.1.11. Root password: ******** Your SSH key SHA256:abc is installed for root.",
    ],
    [
      "VPN account on 127.0.0.1: user u1, password Qr7.s-Tu~v8W",
      "VPN account on 127.0.0.1: user u1, password ********",
    ],
    [
      "VPN account on 127.0.0.1: user u1, already yours; its password is unchanged.",
      "VPN account on 127.0.0.1: user u1, already yours; its password is unchanged.",
    ],
    ["Imaging fog-machine-4.", "Imaging fog-machine-4."],
  ])("masks every password: %s", (message, shown) => {
    expect(maskPasswords(message)).toBe(shown);
  });

  it("names access tasks with their type", () => {
    expect(taskKind({ kind: "access", config: { access_type: "vpn" } })).toBe("access vpn");
    expect(taskKind({ kind: "hardware", config: { id: "50" } })).toBe("hardware");
  });
});

describe("the demo's command line", () => {
  it.each([
    [["--dashboard", "nope"], 'unknown dashboard API "nope" for --dashboard'],
    [["--bogus"], "unknown option --bogus"],
    [["--dashboard"], "--dashboard needs a value"],
    [["extra"], "unexpected argument extra"],
  ])("refuses %j, naming it and the allowed values (exit 2)", async (args, why) => {
    const ran = await runProcess(
      process.execPath,
      ["--import", "tsx", join(repoRoot, "scripts", "demo.ts"), ...args],
      { cwd: repoRoot, timeoutMs: 30_000 },
    );
    expect(ran.code, ran.stdout).toBe(2);
    expect(ran.stderr).toContain(`demo: ${why}; the demo takes --dashboard bookings or jobs`);
    expect(ran.stdout).toBe("");
  });
});
