/**
 * Runs the simulated lab (dashboard, FOG, SSH hosts) in the foreground and writes a config for
 * it, so that the real commands can be pointed at it:
 *
 *   npx tsx scripts/sim-lab.ts --work-dir var/sim-lab --book 2
 *   node bin/laas.mjs listen --config var/sim-lab/conf/pharos.yaml
 *   LAAS_MODE=embedded LAAS_CONFIG=var/sim-lab/conf/pharos.yaml npx serverless invoke local -f poll
 *
 * --book N adds N bookings (installers in turn) that start now and last --minutes M (default 10).
 */
import { resolve } from "node:path";
import { Command } from "commander";
import { bookingAt } from "../sim/dashboard-sim";
import { startSimulatedLab } from "../sim/lab";

const INSTALLERS = ["Fuel", "Joid", "Compass", null] as const;

const options = new Command("sim-lab")
  .option("--work-dir <dir>", "where the lab's config, store and logs go", "var/sim-lab")
  .option("--book <n>", "bookings to add, starting now", "0")
  .option("--minutes <m>", "length of each booking", "10")
  .option("--time-scale <x>", "how much faster than real time FOG images", "60")
  .option("--dashboard-port <port>", "fixed dashboard port (default: any free one)")
  .parse()
  .opts();

const lab = await startSimulatedLab({
  workDir: resolve(options.workDir),
  timeScale: Number(options.timeScale),
  ...(options.dashboardPort ? { dashboardPort: Number(options.dashboardPort) } : {}),
});
const now = Date.now();
for (let i = 0; i < Number(options.book); i++) {
  const host = lab.inventory[i % lab.inventory.length]!;
  lab.dashboard.addBooking(
    bookingAt({
      id: 1000 + i,
      resource_id: Number(host.resourceId),
      start: new Date(now),
      end: new Date(now + Number(options.minutes) * 60_000),
      installer_name: INSTALLERS[i % INSTALLERS.length] ?? null,
      purpose: "simulated booking",
    }),
  );
}
process.stdout.write(
  `${JSON.stringify({
    config: lab.configPath,
    dashboard: lab.dashboard.url,
    fog: lab.fog.url,
    sshPort: lab.hosts.port,
  })}\n`,
);
const stop = async () => {
  await lab.close();
  process.exit(0);
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
