/**
 * The status page, driven in headless Chromium (Debian's, through playwright-core) against a
 * simulated lab with its real directory and mail server: hosts and bookings listed and kept up
 * to date while work runs, a booking's timeline with its steps (and a failed one's cause), the
 * pod drawing with every configured VM and network and which VM is on which, and no secret the
 * run handed out — nor any of the config's — on the page or in any answer behind it. A
 * screenshot is kept in var/test-artifacts/.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveStatusPage } from "../lib/cli/ui";
import { installerConfigFor } from "../lib/config/lookup";
import type { Booking } from "../lib/domain/booking";
import { silentLogger } from "../lib/log";
import { Secret } from "../lib/secret";
import type { RunningWebServer } from "../lib/web/server";
import { bookingAt } from "../sim/dashboard-sim";
import { repoRoot } from "../sim/lab";
import { ensureDebianPackages } from "./helpers/debian";
import { type ListeningHandoverLab, listenOnHandoverLab } from "./helpers/handover-lab";
import { waitFor } from "./helpers/wait";

const SLOW = 240_000;
const FAILING_HOST = "fog-machine-5";
const ARTIFACTS = join(repoRoot, "var", "test-artifacts");

let h: ListeningHandoverLab;
let server: RunningWebServer;
let browser: Browser;
let page: Page;
let readyId: string;
let failedId: string;
let polling: Promise<void>;
let stopPolling = false;

/** Every Secret anywhere in the loaded config: tokens, keys, passwords. */
function configSecrets(value: unknown, seen = new Set<unknown>(), out: string[] = []): string[] {
  if (value instanceof Secret) {
    const revealed = value.reveal();
    if (revealed.length >= 6) out.push(revealed);
    return out;
  }
  if (typeof value !== "object" || value === null || seen.has(value)) return out;
  seen.add(value);
  const values = value instanceof Map ? [...value.values()] : Object.values(value);
  for (const item of values) configSecrets(item, seen, out);
  return out;
}

/** An attribute of every element the locator finds, in the page's order (read from Node). */
async function attributes(found: Locator, name: string): Promise<(string | null)[]> {
  return Promise.all((await found.all()).map((element) => element.getAttribute(name)));
}

function booked(id: number, resourceId: string, installer: string): void {
  const now = Date.now();
  h.lab.dashboard.addBooking(
    bookingAt({
      id,
      resource_id: Number(resourceId),
      start: new Date(now - 1_000),
      end: new Date(now + 3_600_000),
      installer_name: installer,
      purpose: "web page",
      user: 7,
    }),
  );
}

async function bookingIn(id: string, state: Booking["state"]): Promise<Booking> {
  return waitFor(
    `booking ${id} ${state}`,
    async () => {
      const booking = await h.embedded.runtime.store.getBooking(id);
      return booking?.state === state ? booking : undefined;
    },
    120_000,
  );
}

// On a fresh machine Debian's chromium comes first: a download of its own, given its own time.
beforeAll(() => ensureDebianPackages(["chromium"], ["chromium"]), 900_000);

beforeAll(async () => {
  h = await listenOnHandoverLab({
    name: "laas-web",
    lab: { installerFails: [FAILING_HOST] },
    handover: { operators: ["lab-ops@lab.example.org"] },
  });
  server = await serveStatusPage(h.embedded.runtime, { port: 0 }, silentLogger);
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    // As root (CI), Chromium refuses to start with its sandbox.
    args: ["--no-sandbox"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 1400 }, timezoneId: "UTC" });
  const ok = h.lab.inventory.find((host) => host.name !== FAILING_HOST);
  const failing = h.lab.inventory.find((host) => host.name === FAILING_HOST);
  if (!ok || !failing) throw new Error("the simulated inventory lacks its hosts");
  h.lab.dashboard.addUser({
    id: 7,
    username: "ada",
    email: "ada@example.org",
  });
  readyId = "501";
  failedId = "502";
  booked(501, ok.resourceId, "Fuel");
  booked(502, failing.resourceId, "Fuel");
  // The page is opened before anything ran: what follows must reach it without a reload.
  await page.goto(server.url);
  polling = (async () => {
    while (!stopPolling) {
      await h.listener.pollOnce();
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  })();
  await bookingIn(readyId, "ready");
  await bookingIn(failedId, "failed");
}, SLOW);

afterAll(async () => {
  stopPolling = true;
  await polling;
  await browser?.close();
  await server?.close();
  await h?.close();
});

describe("the status page", () => {
  it("lists hosts and bookings, and follows them as the work runs, without a reload", async () => {
    // The page was loaded before the poll saw any booking; it shows them ready and failed now.
    const stateOf = (id: string) =>
      page.locator(`tr.booking[data-booking="${id}"] td:nth-child(3)`).textContent();
    await expect.poll(() => stateOf(readyId), { timeout: 30_000 }).toBe("ready");
    await expect.poll(() => stateOf(failedId), { timeout: 30_000 }).toBe("failed");
    const hosts = await attributes(page.locator("#hosts tr"), "data-host");
    expect(hosts.sort()).toEqual(h.lab.inventory.map((host) => host.name).sort());
    const ready = page.locator(`tr.booking[data-booking="${readyId}"]`);
    const cells = await ready.locator("td").allTextContents();
    // booking, host, state, stage, start, end, user, installer; times carry their zone.
    expect(cells[2]).toBe("ready");
    expect(cells[4]).toMatch(/UTC/);
    expect(cells[7]).toBe("Fuel");
  });

  it("opens a booking's timeline: its steps from the engine's history, with waits and heartbeats", async () => {
    await page.locator(`tr.booking[data-booking="${readyId}"]`).click();
    const execution = page.locator(`.execution[data-execution="booking-${readyId}-provision-1"]`);
    // Ready is written a step before the execution's end; the page shows the end when it comes.
    await expect
      .poll(() => execution.locator("h3").textContent(), { timeout: 15_000 })
      .toMatch(/SUCCEEDED/);
    const steps = execution.locator("tr.step");
    const rows = await Promise.all(
      (await steps.all()).map(async (row) => ({
        state: await row.getAttribute("data-state"),
        outcome: await row.getAttribute("data-outcome"),
        text: (await row.textContent()) ?? "",
      })),
    );
    const states = rows.map((row) => row.state);
    for (const state of ["StartImaging", "AwaitImaging", "AwaitHost", "BuildPod", "MarkReady"]) {
      expect(states).toContain(state);
    }
    expect(states.indexOf("StartImaging")).toBeLessThan(states.indexOf("BuildPod"));
    // The hand-over's mail went out; every step succeeded.
    expect(rows.every((row) => row.outcome === "succeeded")).toBe(true);
    // A callback task says it waited, and the heartbeats the watcher sent while it did.
    const imaging = rows.find((row) => row.state === "AwaitImaging");
    expect(imaging?.text).toMatch(/\(waits\)/);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "web-page.png"), fullPage: true });
  });

  it("draws the pod from the booking's config: every VM and network, and which VM is on which", async () => {
    await page.locator("#pod svg").waitFor({ timeout: 15_000 });
    const config = installerConfigFor(h.embedded.runtime.config, "Fuel");
    const drawn = {
      vms: await attributes(page.locator("#pod svg .vm"), "data-vm"),
      networks: await attributes(page.locator("#pod svg .network"), "data-network"),
      links: await Promise.all(
        (await page.locator("#pod svg .link").all()).map(async (link) => ({
          vm: await link.getAttribute("data-vm"),
          network: await link.getAttribute("data-network"),
          mac: await link.getAttribute("data-mac"),
        })),
      ),
    };
    expect(drawn.vms).toEqual(config.hypervisor.vms.domains.map((vm) => vm.name));
    expect(drawn.networks).toEqual(config.hypervisor.networks.networks.map((n) => n.name));
    const configured = config.hypervisor.vms.domains.flatMap((vm) =>
      vm.interfaces.map((nic) => ({ vm: vm.name, network: nic.name })),
    );
    expect(drawn.links.map(({ vm, network }) => ({ vm, network }))).toEqual(configured);
    // The MACs libvirt gave each interface, as BuildPod read them back.
    const booking = await h.embedded.runtime.store.getBooking(readyId);
    const recorded = booking?.run?.steps.buildPod?.result as {
      macs: Record<string, Record<string, string>>;
    };
    for (const link of drawn.links) {
      expect(link.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(link.mac).toBe(recorded.macs[link.vm ?? ""]?.[link.network ?? ""]);
    }
  });

  it("shows a failed booking's failing step and its cause", async () => {
    await page.locator(`tr.booking[data-booking="${failedId}"]`).click();
    const execution = page.locator(`.execution[data-execution="booking-${failedId}-provision-1"]`);
    await execution.locator("tr.step").first().waitFor({ timeout: 15_000 });
    const failedSteps = await execution.locator('tr.step[data-outcome="caught"]').allTextContents();
    expect(failedSteps.join("\n")).toMatch(/AwaitInstaller[\s\S]*InstallerFailed/);
    await expect.poll(() => execution.locator("h3").textContent()).toMatch(/FAILED/);
  });

  it("holds no secret: none handed out, none of the config's, on the page or behind it", async () => {
    const mails = await waitFor("the hand-over mail", () => {
      const sent = h.smtp.messages.filter((mail) => mail.subject.startsWith("Your LaaS pod"));
      return sent.length > 0 ? sent : undefined;
    });
    const handedOut = mails.flatMap((mail) =>
      [...mail.text.matchAll(/^\s+Password:\s+(\S+)$/gm)].map((match) => match[1] ?? ""),
    );
    expect(handedOut.length).toBeGreaterThanOrEqual(2);
    const secrets = [...handedOut, ...configSecrets(h.embedded.runtime.config)];
    expect(secrets.length).toBeGreaterThan(handedOut.length);
    const answers: string[] = [await page.content()];
    for (const path of [
      "",
      "api/overview",
      `api/bookings/${readyId}`,
      `api/bookings/${failedId}`,
      `api/bookings/${readyId}/pod.svg`,
      "metrics",
    ]) {
      const answer = await fetch(new URL(path, server.url));
      expect(answer.status, path).toBe(200);
      answers.push(await answer.text());
    }
    for (const secret of secrets) {
      for (const answer of answers) expect(answer.includes(secret)).toBe(false);
    }
  });
});
