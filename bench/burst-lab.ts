/**
 * The simulated lab of bench/burst.ts, in a process of its own: a real lab's dashboard, FOG and
 * hosts are other machines, so their work must not take the CPU of the process that runs LaaS.
 *
 * Started with a JSON argument {workDir, hosts, timeScale, imageSizeGB, imagingTimeout}, it
 * prints one JSON line per event on stdout: {"lab": {configPath, resourceIds}} once ready, then
 * {"deployed": {host, at}} as FOG completes each deploy. On stdin it takes JSON lines
 * {"book": {dueAt, count}} (that many bookings, one per host, all starting at dueAt) and
 * {"close": true}.
 */
import { createInterface } from "node:readline";
import { bookingAt } from "../sim/dashboard-sim";
import { startSimulatedLab } from "../sim/lab";

interface LabArgs {
  workDir: string;
  hosts: number;
  timeScale: number;
  imageSizeGB: number;
  imagingTimeout: number;
}

const args = JSON.parse(process.argv[2] ?? "{}") as LabArgs;
const say = (event: unknown) => process.stdout.write(`${JSON.stringify(event)}\n`);

const lab = await startSimulatedLab({
  workDir: args.workDir,
  timeScale: args.timeScale,
  extraHosts: Math.max(0, args.hosts - 3),
  pollInterval: 1,
  polling: 1,
  imageSizeGB: args.imageSizeGB,
  imagingTimeout: args.imagingTimeout,
  bootTimeout: 600,
  installTimeout: 600,
});
lab.onDeployed((host) => say({ deployed: { host, at: Date.now() } }));
say({ lab: { configPath: lab.configPath, resourceIds: lab.inventory.map((h) => h.resourceId) } });

for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as { book?: { dueAt: number; count: number }; close?: true };
  if (command.book) {
    const { dueAt, count } = command.book;
    lab.inventory.slice(0, count).forEach((host, i) => {
      lab.dashboard.addBooking(
        bookingAt({
          id: 5000 + i,
          resource_id: Number(host.resourceId),
          start: new Date(dueAt),
          end: new Date(dueAt + 24 * 3_600_000),
          installer_name: null,
          purpose: "burst benchmark",
        }),
      );
    });
  }
  if (command.close) break;
}
await lab.close();
process.exit(0);
