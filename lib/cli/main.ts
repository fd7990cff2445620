/**
 * The `laas` command: the embedded default's front door (listen, deploy, stop, reset-db, status,
 * host …).
 * Exit codes: see exit.ts.
 */
import { Command, CommanderError } from "commander";
import { StoreLockedError } from "../adapters/local/embedded-dynamodb";
import type { StepHandler } from "../adapters/local/local-engine";
import { ConfigError, errorMessage } from "../errors";
import { handoverCommand, sweepCommand } from "./access";
import { deployCommand } from "./deploy";
import { EXIT, Refusal, UsageError } from "./exit";
import {
  hostForgetKeyCommand,
  hostListCommand,
  hostQuarantineCommand,
  hostReleaseCommand,
  hostShowCommand,
} from "./host";
import { listenCommand } from "./listen";
import { logsCommand } from "./logs";
import { configOption, positiveSeconds, seconds, tcpPort } from "./options";
import { resetDbCommand } from "./reset-db";
import { statusCommand } from "./status";
import { stopCommand } from "./stop";
import { uiCommand } from "./ui";
import { LAAS_VERSION } from "./version";

/** How often `status --watch` looks again when not told. */
const WATCH_DEFAULT_SECONDS = 2;

export interface CliDeps {
  handlers: Record<string, StepHandler>;
  out?: (line: string) => void;
  err?: (line: string) => void;
}

export async function main(argv: string[], deps: CliDeps): Promise<number> {
  const out = deps.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const err = deps.err ?? ((line: string) => process.stderr.write(`${line}\n`));
  let code: number = EXIT.ok;

  const program = new Command("laas")
    .description("Lab as a Service: bookings on the dashboard become imaged hosts, and back.")
    .version(LAAS_VERSION, "-V, --version", "print the version of laas")
    .exitOverride()
    .configureOutput({ writeOut: (s) => out(s.trimEnd()), writeErr: (s) => err(s.trimEnd()) })
    .showHelpAfterError();

  program
    .command("listen")
    .description("poll the dashboard and run bookings' workflows, in the foreground")
    .addOption(configOption("lab"))
    .option("--drain <seconds>", "on SIGINT/SIGTERM, let workflows finish this long", seconds, 30)
    .option(
      "--once",
      "poll once, wait for the workflows it started, and exit (1 if the poll failed)",
    )
    .option("--json", "the log's JSON lines on stdout (not a terminal's live lines)")
    .option("--ui", "serve the status page and /metrics too (see `laas ui`)")
    .option("--ui-address <ip>", "address for --ui (default pharos.yaml web.address, 127.0.0.1)")
    .option("--ui-port <port>", "port for --ui (default pharos.yaml web.port, 8080)", tcpPort)
    .action(async (opts) => {
      const ui =
        opts.ui || opts.uiAddress !== undefined || opts.uiPort !== undefined
          ? {
              ...(opts.uiAddress === undefined ? {} : { address: String(opts.uiAddress) }),
              ...(opts.uiPort === undefined ? {} : { port: Number(opts.uiPort) }),
            }
          : undefined;
      code = await listenCommand(
        {
          config: opts.config,
          drainSeconds: opts.drain,
          once: Boolean(opts.once),
          json: Boolean(opts.json),
          ...(ui ? { ui } : {}),
        },
        deps.handlers,
        out,
        err,
      );
    });

  program
    .command("deploy")
    .description("image one host now with an installer's image (as deploy.py)")
    .addOption(configOption("lab or installer"))
    .requiredOption("--host <name>", "FOG host name")
    .option(
      "--reset",
      "reimage the host with the config's clean image and return it to the free pool, whatever " +
        "key it shows (its recorded key is forgotten first): as `laas host release`",
    )
    .option("--json", "the log's JSON lines on stdout (not a terminal's live line)")
    .action(async (opts) => {
      code = await deployCommand(
        {
          config: opts.config,
          host: opts.host,
          reset: Boolean(opts.reset),
          json: Boolean(opts.json),
        },
        deps.handlers,
        out,
        err,
      );
    });

  program
    .command("logs")
    .description("print one booking's log (logging_dir/bookings/<booking>.log)")
    .argument("<booking>", "booking id")
    .addOption(configOption("lab or installer"))
    .option("-f, --follow", "keep printing the lines that come, until Ctrl-C")
    .option("--json", "the log's JSON lines as they are")
    .action(async (bookingId: string, opts) => {
      code = await logsCommand(
        { config: opts.config, bookingId, follow: Boolean(opts.follow), json: Boolean(opts.json) },
        out,
      );
    });

  const host = program
    .command("host")
    .description("the lab's hosts: list, show, quarantine, release, forget-key");
  host
    .command("list")
    .description("one line per host: state, holder booking, failure streak, reason")
    .addOption(configOption("lab"))
    .action(async (opts) => {
      code = await hostListCommand({ config: opts.config }, deps.handlers, out);
    });
  host
    .command("show")
    .description("one host: state, holder, failures, recorded key, FOG id and MAC, history")
    .argument("<name>", "host name (FOG's)")
    .addOption(configOption("lab"))
    .action(async (name: string, opts) => {
      code = await hostShowCommand({ config: opts.config, host: name }, deps.handlers, out);
    });
  host
    .command("quarantine")
    .description(
      "take a free host out of service (a host a booking holds is refused: wait for it to end)",
    )
    .argument("<name>", "host name (FOG's)")
    .requiredOption("--why <text>", "the reason, shown by `laas host list` and `show`")
    .addOption(configOption("lab"))
    .action(async (name: string, opts) => {
      code = await hostQuarantineCommand(
        { config: opts.config, host: name, why: String(opts.why) },
        deps.handlers,
        out,
      );
    });
  host
    .command("release")
    .description(
      "reimage a host with the clean image and free it, whatever key it shows (its recorded " +
        "key is forgotten, its failure streak cleared), following the release to its end; a " +
        "host a booking in a phase holds is refused (as `laas deploy --reset`)",
    )
    .argument("<name>", "host name (FOG's)")
    .addOption(configOption("lab"))
    .action(async (name: string, opts) => {
      code = await hostReleaseCommand({ config: opts.config, host: name }, deps.handlers, out);
    });
  host
    .command("forget-key")
    .description(
      "forget the host's recorded SSH host key: the next login records the first key it shows",
    )
    .argument("<name>", "host name (FOG's)")
    .addOption(configOption("lab"))
    .action(async (name: string, opts) => {
      code = await hostForgetKeyCommand({ config: opts.config, host: name }, deps.handlers, out);
    });

  program
    .command("stop")
    .description(
      "stop the running listener cleanly, letting its work drain or hand over (as stop.sh)",
    )
    .addOption(configOption("lab"))
    .option("--timeout <seconds>", "how long to wait for the listener to exit", seconds, 60)
    .action(async (opts) => {
      code = await stopCommand({ config: opts.config, timeoutSeconds: opts.timeout }, out);
    });

  program
    .command("reset-db")
    .description(
      "fill the host table from FOG and/or empty the booking table (as resetDatabase.py); " +
        "refused while a listener runs, a host is in use or a booking is active, --force or not",
    )
    .addOption(configOption("lab or installer"))
    .option("--host", "refill the host table from FOG")
    .option("--booking", "empty the booking table")
    .option("--both", "both of the above")
    .option("--force", "replace existing data (never while the store is in use)")
    .action(async (opts) => {
      const hosts = Boolean(opts.host || opts.both);
      const bookings = Boolean(opts.booking || opts.both);
      if (!hosts && !bookings) {
        throw new CommanderError(
          EXIT.usage,
          "laas.usage",
          "say what to reset: --host, --booking or --both",
        );
      }
      code = await resetDbCommand(
        { config: opts.config, hosts, bookings, force: Boolean(opts.force) },
        deps.handlers,
        out,
      );
    });

  program
    .command("status")
    .description("hosts and bookings with their states")
    .addOption(configOption("lab"))
    .option("--json", "machine-readable output")
    .option("--all", "every booking the store holds (default: active ones and those ended today)")
    .option(
      "-w, --watch [seconds]",
      `show it again every few seconds (default ${WATCH_DEFAULT_SECONDS}) until Ctrl-C`,
      positiveSeconds,
    )
    .action(async (opts) => {
      const watch: unknown = opts.watch;
      code = await statusCommand(
        {
          config: opts.config,
          json: Boolean(opts.json),
          all: Boolean(opts.all),
          ...(watch === undefined
            ? {}
            : { watchSeconds: watch === true ? WATCH_DEFAULT_SECONDS : Number(watch) }),
        },
        deps.handlers,
        out,
      );
    });

  program
    .command("ui")
    .description(
      "serve the status page and /metrics (default http://127.0.0.1:8080/, pharos.yaml web:)",
    )
    .addOption(configOption("lab"))
    .option("--address <ip>", "address to serve on (anything but loopback needs web.token)")
    .option("--port <port>", "port to serve on", tcpPort)
    .action(async (opts) => {
      code = await uiCommand(
        {
          config: opts.config,
          ...(opts.address === undefined ? {} : { address: String(opts.address) }),
          ...(opts.port === undefined ? {} : { port: Number(opts.port) }),
        },
        deps.handlers,
        out,
      );
    });

  program
    .command("sweep")
    .description("remove VPN users that no active booking uses (never permanent_users)")
    .addOption(configOption("lab"))
    .action(async (opts) => {
      code = await sweepCommand({ config: opts.config }, deps.handlers, out);
    });

  program
    .command("handover")
    .description("send a ready booking's hand-over whose delivery gave up")
    .argument("<booking>", "booking id")
    .addOption(configOption("lab"))
    .action(async (bookingId: string, opts) => {
      code = await handoverCommand({ config: opts.config, bookingId }, deps.handlers, out);
    });

  try {
    await program.parseAsync(argv);
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version")
        return EXIT.ok;
      // `laas help` shows the help and succeeds; `laas` alone shows it as a usage error.
      if (error.code === "commander.help") return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      if (error.code === "laas.usage") err(`laas: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof UsageError) {
      err(`laas: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof ConfigError) {
      err(`laas: configuration error: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof Refusal || error instanceof StoreLockedError) {
      err(`laas: ${error.message}`);
      return EXIT.refused;
    }
    err(`laas: ${errorMessage(error)}`);
    return EXIT.failed;
  }
}
