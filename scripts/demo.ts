/**
 * `npm run demo`: the whole booking loop on one machine, in about a minute.
 *
 * Starts a simulated lab (Pharos dashboard, FOG server, three bare-metal hosts answering SSH, the
 * lab-side relay) with a real OpenLDAP slapd for VPN users (Debian's slapd, installed when
 * missing) and an SMTP server that catches the hand-over messages, fills the host table from FOG,
 * starts the listener on the embedded default (dynalite store, local engine running
 * statemachines/), books three hosts on the dashboard, and prints each booking as it moves:
 * scheduled → provisioning (reboot, FOG imaging, pod, installer, access) → ready (hand-over sent)
 * → releasing (VPN user removed, clean image) → released. It stops by itself when every booking is
 * released.
 *
 * `npm run demo -- --dashboard jobs`: the same lab serving the later dashboard's jobs API instead
 * (scripts/demo-jobs.ts): three jobs, one per host, each a hardware task (a booking of its host),
 * VPN access, software and, on the first, SSH access and a network task. It prints each booking as
 * above and each task's status as the lab posts it (0 new, 100 started, 200 done, 300 error; the
 * passwords in the messages masked), ends each job half a minute after its host was handed over,
 * and stops when the dashboard holds none of the hosts and every booking is released; then a table
 * of every task's final status and lab token. `--dashboard bookings` is the default.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { openEmbeddedRuntime } from "../lib/app/embedded";
import { Listener } from "../lib/app/listener";
import { localStepHandlers } from "../lib/app/step-handlers";
import { main } from "../lib/cli/main";
import { table } from "../lib/cli/status";
import type { Booking } from "../lib/domain/booking";
import { createLogger } from "../lib/log";
import { bookingAt } from "../sim/dashboard-sim";
import { handoverWith, startSimulatedLab } from "../sim/lab";
import { startSlapd } from "../sim/slapd";
import { startSmtpServer } from "../sim/smtp";
import { generateSshKey } from "../sim/sshd";
import { runJobsDemo, taskTable } from "./demo-jobs";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const DASHBOARD_APIS = ["bookings", "jobs"] as const;
type DashboardApi = (typeof DASHBOARD_APIS)[number];

/** The dashboard API the demo plays (`--dashboard`); a wrong command line ends it (exit 2). */
function dashboardApiOf(args: string[]): DashboardApi {
  const allowed = `the demo takes --dashboard ${DASHBOARD_APIS.join(" or ")} (default bookings)`;
  const refuse = (why: string): never => {
    process.stderr.write(`demo: ${why}; ${allowed}\n`);
    process.exit(2);
  };
  let value: string | undefined;
  try {
    const { values } = parseArgs({
      args,
      options: { dashboard: { type: "string" } },
      strict: true,
    });
    value = values.dashboard;
  } catch (error) {
    const code = (error as { code?: string }).code;
    const named = /'([^']*)'/.exec(String((error as Error).message))?.[1] ?? "";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") refuse(`unknown option ${named}`);
    if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") refuse(`unexpected argument ${named}`);
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") refuse("--dashboard needs a value");
    refuse(String((error as Error).message));
  }
  if (value === undefined) return "bookings";
  const api = DASHBOARD_APIS.find((a) => a === value);
  return api ?? refuse(`unknown dashboard API ${JSON.stringify(value)} for --dashboard`);
}

const api = dashboardApiOf(process.argv.slice(2));

const DEADLINE_MS = 150_000;
const began = Date.now();
const clock = () => {
  const s = Math.floor((Date.now() - began) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
};
const say = (line: string) => process.stdout.write(`[${clock()}] ${line}\n`);

const workDir = await mkdtemp(join(tmpdir(), "laas-demo-"));
say("starting slapd for VPN users (installing Debian's slapd when missing)");
const slapd = await startSlapd();
const smtp = await startSmtpServer({ security: "starttls" });
// FOG images 16 GB at 8 GB/min of simulated time; 20x compression makes that ~6 s.
const lab = await startSimulatedLab({
  workDir,
  timeScale: 20,
  pollInterval: 1,
  polling: 1,
  handover: handoverWith(slapd, smtp),
  ...(api === "jobs" ? { jobs: {} } : {}),
});
const dashboardUrl = api === "jobs" ? `${lab.jobsDashboard!.url} (jobs API)` : lab.dashboard.url;
say(
  `simulated lab up: dashboard ${dashboardUrl}, FOG ${lab.fog.url}, hosts on port ${lab.hosts.port}, LDAP ${slapd.url}, SMTP 127.0.0.1:${smtp.port}`,
);
// The jobs API has no user API: its users are ids in the tasks.
if (api === "bookings") {
  const userKey = await generateSshKey("ada@laptop");
  lab.dashboard.addUser({
    id: 1,
    username: "ada",
    email: "ada@example.org",
    first_name: "Ada",
    last_name: "Lovelace",
    ssh_public_key: userKey.publicKey,
  });
  lab.dashboard.addUser({ id: 2, username: "grace", email: "grace@example.org" });
}
say(`lab config written to ${lab.configPath}`);

const quiet = () => undefined;
await main(["node", "laas", "reset-db", "--host", "--config", lab.configPath], {
  handlers: localStepHandlers(),
  out: (line) => say(`laas reset-db --host: ${line}`),
  err: quiet,
});

const logFile = join(workDir, "log", "laas.log");
const embedded = await openEmbeddedRuntime(lab.configPath, {
  handlers: localStepHandlers(),
  listen: true,
  logger: createLogger({ destination: logFile }),
});
const listener = new Listener(embedded, { drainMs: 10_000 });
const listening = listener.run();
say(`listener started (polls every ${listener.intervalMs} ms); JSON log in ${logFile}`);

const describe = (b: Booking) =>
  `booking ${b.id} on ${b.hostName} (${b.installer ?? "no installer"}): ${b.state}` +
  (b.state === "failed"
    ? ` — ${b.failure}`
    : b.progress && b.progress !== b.state
      ? ` — ${b.progress}`
      : "") +
  (b.access && b.state === "ready"
    ? ` — VPN user ${b.access.vpnUser ?? "none"}, SSH key ${b.access.sshKey ?? "-"}, hand-over ${b.access.handover}`
    : "");

// Each message as it arrives: the user's hand-over (passwords masked here; the user gets them
// in clear) and the operators' notices, which carry none.
let mailsShown = 0;
const showMail = () => {
  for (const mail of smtp.messages.slice(mailsShown)) {
    const kind = /Password:/.test(mail.text) ? "hand-over e-mail" : "operators' notice";
    say(`${kind} to ${mail.to.join(", ")}: ${mail.subject}`);
    const lines = mail.text
      .split("\n")
      .filter((line) => /^\s+(Host|Address|Server|User name|Password|Ends):/.test(line))
      .map((line) => line.replace(/(Password:\s+)\S+/, "$1********"));
    for (const line of lines) process.stdout.write(`          ${line.trim()}\n`);
  }
  mailsShown = smtp.messages.length;
};

const seen = new Map<string, string>();
/** Prints each booking whose line changed since it was last printed; returns them all. */
const showBookings = async (): Promise<Booking[]> => {
  const bookings = await embedded.runtime.store.listBookings();
  for (const b of bookings.sort((x, y) => x.id.localeCompare(y.id))) {
    const line = describe(b);
    if (seen.get(b.id) !== line) {
      say(line);
      seen.set(b.id, line);
    }
  }
  return bookings;
};

/** The bookings API: three bookings on the dashboard, followed until each is released. */
async function runBookingsDemo(): Promise<number> {
  // Three bookings, staggered, with and without an installer, each about half a minute long.
  const now = Date.now();
  const plan = [
    { id: 1, host: 0, installer: "Fuel", startIn: 2, minutes: 0.5, user: 1 },
    { id: 2, host: 1, installer: "Joid", startIn: 6, minutes: 0.5, user: 2 },
    { id: 3, host: 2, installer: null, startIn: 10, minutes: 0.45, user: 1 },
  ] as const;
  for (const b of plan) {
    const host = lab.inventory[b.host]!;
    const start = new Date(now + b.startIn * 1000);
    lab.dashboard.addBooking(
      bookingAt({
        id: b.id,
        resource_id: Number(host.resourceId),
        start,
        end: new Date(start.getTime() + b.minutes * 60_000),
        installer_name: b.installer,
        scenario_name: b.installer ? "os-nosdn-nofeature-ha" : null,
        purpose: "demo",
        user: b.user,
      }),
    );
    say(
      `booked ${host.name} (resource ${host.resourceId}) as booking ${b.id}, installer ${b.installer ?? "none"}, starting in ${b.startIn} s`,
    );
  }

  for (;;) {
    const bookings = await showBookings();
    showMail();
    const finished = bookings.filter((b) => ["released", "failed", "cancelled"].includes(b.state));
    if (bookings.length === plan.length && finished.length === plan.length) {
      return finished.every((b) => b.state === "released") ? 0 : 1;
    }
    if (Date.now() - began > DEADLINE_MS) {
      say("the demo ran out of time");
      return 1;
    }
    await sleep(250);
  }
}

const outcome =
  api === "jobs"
    ? await runJobsDemo({ lab, say, showBookings, showMail, began, deadlineMs: DEADLINE_MS })
    : await runBookingsDemo();

listener.stop();
await listening;
const hosts = await embedded.runtime.store.listHosts();
if (api === "jobs") {
  say(`status posts on the jobs dashboard: ${lab.jobsDashboard!.statusPosts.length}; the tasks:`);
  process.stdout.write(`\n${taskTable(lab.jobsDashboard!)}\n`);
} else {
  const notes = lab.dashboard.statusNotes.map((n) => `${n.type}: ${n.title}`);
  say(`status notes on the dashboard: ${notes.length}`);
  for (const note of notes) process.stdout.write(`          ${note}\n`);
}
process.stdout.write(
  `\n${table(
    ["HOST", "STATE", "REBOOTS", "FOG IMAGE"],
    hosts
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((h) => [
        h.name,
        h.state,
        String(lab.hosts.reboots.filter((r) => r.host === h.name).length),
        String(lab.fog.hosts().find((f) => f.name === h.name)?.imageId ?? "?"),
      ]),
  )}\n\n`,
);
const success =
  api === "jobs"
    ? "every job was provisioned, answered, ended and cleaned up"
    : "every booking was provisioned, handed over and released";
say(outcome === 0 ? success : "demo failed");
await embedded.close();
await lab.close();
await smtp.close();
await slapd.stop();
await rm(workDir, { recursive: true, force: true });
process.exit(outcome);
