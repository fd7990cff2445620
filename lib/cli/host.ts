/**
 * `laas host …`: the operator's view of the lab's hosts and what clears them. `list` and `show`
 * read the store; `quarantine` takes a free host out of service; `release` reimages a host clean
 * and frees it, whatever key it shows (release.ts, shared with `laas deploy --reset`);
 * `forget-key` drops the recorded host key. Each works with or without a listener running.
 */
import { join } from "node:path";
import type { StepHandler } from "../adapters/local/local-engine";
import { isRunning } from "../adapters/local/process-identity";
import { type EmbeddedRuntime, openEmbeddedRuntime } from "../app/embedded";
import { isManual } from "../domain/booking";
import type { Host, HostEvent } from "../domain/host";
import { forgetHostKey, operatorQuarantine } from "../lifecycle/host-operations";
import { createLogger, silentLogger } from "../log";
import type { Store } from "../ports/store";
import { loadAnyConfig } from "./config";
import { EXIT, Refusal, UsageError } from "./exit";
import { holdsItsHost, releaseHost } from "./release";
import { table } from "./status";

type Out = (line: string) => void;

/** Longest reason `laas host quarantine --why` takes: it is shown on one line of `host list`. */
export const WHY_MAX_LENGTH = 200;

async function withStore<T>(
  config: string,
  handlers: Record<string, StepHandler>,
  work: (embedded: EmbeddedRuntime) => Promise<T>,
  options: { logged?: boolean } = {},
): Promise<T> {
  const { lab } = await loadAnyConfig(config);
  const logger = options.logged
    ? createLogger({ destination: join(lab.loggingDir, "laas.log") })
    : silentLogger;
  const embedded = await openEmbeddedRuntime(lab, { handlers, listen: false, logger });
  try {
    return await work(embedded);
  } finally {
    await embedded.close();
  }
}

/** The host by that name, or a usage error that says where the names are. */
async function storedHost(store: Store, name: string): Promise<Host> {
  const host = await store.getHost(name);
  if (host) return host;
  const known = await store.listHosts();
  throw new UsageError(
    known.length === 0
      ? `no host ${name}: the store has no hosts yet — fill it from FOG with \`laas reset-db --host\``
      : `no host ${name} in the store; \`laas host list\` lists the lab's hosts`,
  );
}

function firstLine(text: string): string {
  const [first = "", ...rest] = text.split("\n");
  return rest.length > 0 ? `${first} …` : first;
}

export async function hostListCommand(
  options: { config: string },
  handlers: Record<string, StepHandler>,
  out: Out,
): Promise<number> {
  return withStore(options.config, handlers, async ({ runtime }) => {
    const hosts = (await runtime.store.listHosts()).sort((a, b) => a.name.localeCompare(b.name));
    if (hosts.length === 0) {
      out("no hosts in the store: fill it from FOG with `laas reset-db --host`");
      return EXIT.ok;
    }
    out(
      table(
        ["HOST", "STATE", "BOOKING", "FAILURES", "REASON"],
        hosts.map((h) => [
          h.name,
          h.state,
          h.bookingId ?? "-",
          String(h.failures),
          h.reason ? firstLine(h.reason) : "",
        ]),
      ),
    );
    return EXIT.ok;
  });
}

export async function hostShowCommand(
  options: { config: string; host: string },
  handlers: Record<string, StepHandler>,
  out: Out,
): Promise<number> {
  return withStore(options.config, handlers, async ({ runtime }) => {
    const host = await storedHost(runtime.store, options.host);
    const holder = host.bookingId ? await runtime.store.getBooking(host.bookingId) : null;
    const indented = (text: string) => text.split("\n").map((line) => `    ${line}`);
    out(`host:           ${host.name}`);
    out(`state:          ${host.state}`);
    out(
      `holder:         ${
        host.bookingId
          ? `booking ${host.bookingId} (${holder ? holder.state : "not in the store"})`
          : "none"
      }`,
    );
    if (host.reason) {
      out("reason:");
      for (const line of indented(host.reason)) out(line);
    }
    out(`failure streak: ${host.failures}`);
    out(`last failure:   ${host.lastFailure ? eventLine(host.lastFailure) : "none"}`);
    out(
      `recorded key:   ${
        host.hostKey
          ? `${host.hostKey} (of the deploy of ${host.hostKeyDeployed ?? "unknown time"})`
          : "none (the first key the host shows is recorded)"
      }`,
    );
    out(`FOG deployed:   ${host.deployed ?? "unknown"}`);
    out(`address:        ${host.address ?? "unknown"}`);
    out(`FOG id:         ${host.fogId ?? "unknown"}`);
    out(`MAC:            ${host.mac ?? "unknown"}`);
    out(`updated:        ${host.updatedAt}`);
    if (host.history.length === 0) {
      out("history:        none");
    } else {
      out("history:");
      for (const event of host.history) out(`  ${eventLine(event)}`);
    }
    return EXIT.ok;
  });
}

function eventLine(event: HostEvent): string {
  const booking = event.bookingId
    ? ` (booking ${event.bookingId}${event.run ? `, ${event.run}` : ""})`
    : "";
  const detail = event.detail ? `: ${event.detail.split("\n").join(" / ")}` : "";
  return `${event.at} ${event.event}${booking}${detail}`;
}

/** The operator's reason, as it will be shown: one line, printable, not too long. */
export function checkedWhy(why: string): string {
  const text = why.trim();
  if (text === "") throw new UsageError("--why: say why the host is taken out of service");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
  if (/[\u0000-\u001f\u007f-\u009f]/.test(text)) {
    throw new UsageError("--why: one line of printable text, without control characters");
  }
  if (text.length > WHY_MAX_LENGTH) {
    throw new UsageError(`--why: at most ${WHY_MAX_LENGTH} characters (${text.length} given)`);
  }
  return text;
}

/**
 * Only a free host is quarantined (or one still held by a booking that is over, nothing running
 * on it). A host a booking holds is refused: quarantining it would take it from under the
 * booking, whose workflow would go on on a host marked out of service. The operator waits for
 * the booking to end (or ends their own deploy with `laas host release`), then quarantines.
 */
export async function hostQuarantineCommand(
  options: { config: string; host: string; why: string },
  handlers: Record<string, StepHandler>,
  out: Out,
): Promise<number> {
  const why = checkedWhy(options.why);
  return withStore(options.config, handlers, async ({ runtime, storeHandle }) => {
    const host = await storedHost(runtime.store, options.host);
    const name = host.name;
    if (host.state === "quarantined") {
      throw new Refusal(
        `host ${name} is quarantined already (${firstLine(host.reason ?? "no reason recorded")}); ` +
          `nothing changed — \`laas host release ${name}\` returns it to service`,
      );
    }
    if (host.state !== "free") {
      const holder = host.bookingId ? await runtime.store.getBooking(host.bookingId) : null;
      if (holder && holdsItsHost(holder.state)) {
        const then = isManual(holder.id)
          ? `end that deploy with \`laas host release ${name}\``
          : `wait for booking ${holder.id} to end (its release frees the host)`;
        throw new Refusal(
          `host ${name} is ${host.state}, held by booking ${holder.id} (${holder.state}); ` +
            `quarantining it would take it from under that booking: ${then}, then quarantine it`,
        );
      }
      const records = await storeHandle.journal.list();
      const running = records.find(
        (r) =>
          r.status === "RUNNING" &&
          r.input.hostName === name &&
          r.owner !== null &&
          isRunning(r.owner),
      );
      if (running) {
        throw new Refusal(
          `host ${name} has a workflow running (${running.name}); wait for it to end, then ` +
            "quarantine it",
        );
      }
    }
    const seen = { state: host.state, bookingId: host.bookingId };
    const { changed, item } = await runtime.store.updateHost(
      name,
      operatorQuarantine(why, seen, runtime.now()),
    );
    if (!changed) {
      throw new Refusal(
        `host ${name} changed meanwhile (it is now ${item.state}${
          item.bookingId ? `, booking ${item.bookingId}` : ""
        }); nothing was done — run the command again`,
      );
    }
    out(`${name}: quarantined (${why}); \`laas host release ${name}\` returns it to service`);
    return EXIT.ok;
  });
}

export async function hostReleaseCommand(
  options: { config: string; host: string },
  handlers: Record<string, StepHandler>,
  out: Out,
): Promise<number> {
  return withStore(
    options.config,
    handlers,
    async (embedded) =>
      releaseHost(embedded, await storedHost(embedded.runtime.store, options.host), out),
    { logged: true },
  );
}

export async function hostForgetKeyCommand(
  options: { config: string; host: string },
  handlers: Record<string, StepHandler>,
  out: Out,
): Promise<number> {
  return withStore(options.config, handlers, async ({ runtime }) => {
    const host = await storedHost(runtime.store, options.host);
    const { changed } = await runtime.store.updateHost(host.name, forgetHostKey(runtime.now()));
    out(
      changed
        ? `${host.name}: recorded host key ${host.hostKey ?? "(deploy time only)"} forgotten; ` +
            "the next login records the first key the host shows (under relay.host_identity's proof)"
        : `${host.name}: no host key recorded; nothing changed`,
    );
    return EXIT.ok;
  });
}
