/**
 * Shapes of the YAML config files, in the seed's own vocabulary (snake_case, `jinja-template`,
 * `brAddr`…). These schemas check shape and values only; load.ts resolves paths, reads secrets
 * and referenced files, and builds the camelCase types of types.ts.
 *
 * Every schema that a user can get wrong carries an "expected …" message; issues.ts adds what
 * was found (except for secrets) and the field path.
 */
import { z } from "zod";
import type { WaitEvent } from "../domain/run";
import { LEASE_FORMATS } from "../lab/dhcp";
import {
  LONGEST_WATCH_INTERVAL_SECONDS,
  WAIT_CEILING_SECONDS,
  WAIT_STATES,
} from "../workflow/wait-ceilings";
import { cidrContains, ipv4ToInt, maskToPrefix, parseCidr } from "./ipv4";
import type { Issue } from "./issues";

const expected = (what: string) => ({ error: `expected ${what}` });

/** relay.host_identity: see HostIdentityProof (lib/ports/relay.ts). */
export const HOST_IDENTITY_MODES = ["neighbour", "pinned", "trust-first-key"] as const;

const text = (what = "a non-empty string") =>
  z.string(expected(what)).trim().min(1, expected(what));

/** A path on this machine; relative paths are resolved against the config file's directory. */
const configPath = text("a path");

/** A path on the pod host or DHCP server, used there as is: it must be absolute. */
const remotePath = z
  .string(expected("an absolute path"))
  .regex(/^\/[^\0\n]*$/, expected("an absolute path"));

const positiveInt = z.int(expected("a positive integer")).positive(expected("a positive integer"));

/** booking_retention_days: a month by default, ten years at most. */
export const DEFAULT_BOOKING_RETENTION_DAYS = 30;
const MAX_BOOKING_RETENTION_DAYS = 3650;

/** A deadline the watcher enforces, below the ceiling its wait state has in statemachines/. */
const deadline = (event: WaitEvent) =>
  positiveInt.max(WAIT_CEILING_SECONDS[event], {
    error: `expected at most ${WAIT_CEILING_SECONDS[event]} seconds (the ${WAIT_STATES[event]} state's TimeoutSeconds)`,
  });

const positiveNumber = z
  .number(expected("a positive number"))
  .positive(expected("a positive number"));

const flag = z.boolean(expected("true or false"));

const httpUrl = z.url({ protocol: /^https?$/, error: "expected an http(s) URL" });

const ipv4 = z.ipv4(expected("an IPv4 address"));

const ldapUrl = z.url({
  protocol: /^ldaps?$/,
  error: "expected an ldap:// or ldaps:// URL",
});
const hostOrAddress = z.union([z.ipv6(), z.hostname()], expected("a host name or IP address"));

/** Names that end up in libvirt XML, virsh argv and interface names: kept to a safe alphabet. */
const libvirtName = z
  .string(expected("a name"))
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/,
    expected("a name of letters, digits, '.', '_', '+', '-'"),
  );

/** Linux limits interface names to 15 characters. */
const bridgeName = z
  .string(expected("a bridge name"))
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/,
    expected("a bridge name (up to 15 letters, digits, '.', '_', '-')"),
  );

const fogHostName = z
  .string(expected("a FOG host name"))
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    expected("a FOG host name (letters, digits, '.', '_', '-')"),
  );

/** A secret: the value, a path to a file holding it, or `{file: path}` (see secrets.ts). */
export const secretSource = z.union(
  [z.string(), z.strictObject({ file: configPath })],
  expected("a string or {file: path}"),
);

const sshUser = z
  .string(expected("a user name"))
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, expected("a user name"));

const port = z
  .int(expected("a port number (1-65535)"))
  .min(1, expected("a port number (1-65535)"))
  .max(65535, expected("a port number (1-65535)"));

/** As `ssh-keygen -lf` prints it: SHA256 and 43 base64 characters. */
const hostKeyFingerprint = z
  .string(expected("an OpenSSH fingerprint (SHA256:…)"))
  .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, expected("an OpenSSH fingerprint (SHA256:…)"));

export const POWER_TYPES = ["ssh", "ipmi"] as const;
const powerType = z.enum(POWER_TYPES, expected('"ssh" or "ipmi"'));

/** IPMI 2.0 limits: user names of 16 bytes at most; cipher suites 0 to 17. */
const ipmiUser = z
  .string(expected("a BMC user name (1-16 characters)"))
  .regex(/^[\x21-\x7e]{1,16}$/, expected("a BMC user name (1-16 characters)"));
const cipherSuite = z
  .int(expected("an IPMI cipher suite (0-17)"))
  .min(0, expected("an IPMI cipher suite (0-17)"))
  .max(17, expected("an IPMI cipher suite (0-17)"));

/**
 * The host's BMC, reached with `ipmitool -I lanplus` from the relay (extension). Every field is
 * optional here: lab-wide ones (user, password) merge under each host's (address).
 */
const ipmiSchema = z.strictObject(
  {
    address: hostOrAddress.optional(),
    port: port.optional(),
    user: ipmiUser.optional(),
    password: secretSource.optional(),
    cipher_suite: cipherSuite.optional(),
    efi_boot: flag.optional(),
    timeout: positiveInt.optional(),
  },
  expected("a mapping {address, port, user, password, cipher_suite, efi_boot, timeout}"),
);

/** Lab-wide power settings (pharos.yaml `power:`), an extension of the seed. */
export const powerSchema = z.strictObject(
  {
    type: powerType.default("ssh"),
    user: sshUser.default("root"),
    port: port.default(22),
    key: secretSource,
    host_key: hostKeyFingerprint.nullable().default(null),
    timeout: positiveInt.default(30),
    ipmi: ipmiSchema.optional(),
  },
  expected("a mapping {type, user, port, key, host_key, timeout, ipmi}"),
);

/**
 * The lab-side relay (pharos.yaml `relay:`), an extension of the seed: the machine LaaS logs in to
 * for lab work (DHCP log, libvirt, installers). Its host key is pinned: there is no default.
 */
export const relaySchema = z.strictObject(
  {
    host: hostOrAddress,
    port: port.default(22),
    user: sshUser.default("laas"),
    key: secretSource,
    host_key: hostKeyFingerprint,
    timeout: positiveInt.default(30),
    // Extension: how a host's first key after imaging is shown to be the booked host's.
    host_identity: z
      .enum(HOST_IDENTITY_MODES, expected(HOST_IDENTITY_MODES.map((m) => `"${m}"`).join(", ")))
      .default("neighbour"),
  },
  expected("a mapping {host, port, user, key, host_key, timeout, host_identity}"),
);

/** Per-host power settings in the inventory: any field, merged over the lab-wide ones. */
export const powerOverrideSchema = z.strictObject(
  {
    type: powerType.optional(),
    user: sshUser.optional(),
    port: port.optional(),
    key: secretSource.optional(),
    host_key: hostKeyFingerprint.nullable().optional(),
    timeout: positiveInt.optional(),
    ipmi: ipmiSchema.optional(),
  },
  expected("a mapping {type, user, port, key, host_key, timeout, ipmi}"),
);

const inventoryHostSchema = z.preprocess(
  // The seed's form `50: fog-machine-4` is shorthand for `50: {name: fog-machine-4}`.
  (value) => (typeof value === "string" ? { name: value } : value),
  z.strictObject(
    {
      name: fogHostName,
      address: hostOrAddress.nullable().optional(),
      power: powerOverrideSchema.nullable().optional(),
    },
    expected("a FOG host name or a mapping {name, address, power}"),
  ),
);

export const inventorySchema = z
  .record(
    z.string().min(1, "a resource id must not be empty"),
    inventoryHostSchema,
    expected("a mapping of dashboard resource id to FOG host name"),
  )
  .superRefine((hosts, ctx) => {
    const seen = new Map<string, string>();
    for (const [id, host] of Object.entries(hosts)) {
      const other = seen.get(host.name);
      if (other !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [id, "name"],
          message: `FOG host ${host.name} is already resource ${other}`,
        });
      }
      seen.set(host.name, id);
    }
  });

/** Forward modes libvirt knows (`<forward mode=…>`). */
export const FORWARD_MODES = [
  "nat",
  "route",
  "open",
  "bridge",
  "private",
  "vepa",
  "passthrough",
  "hostdev",
] as const;

const networkSchema = z
  .strictObject({
    brAddr: ipv4,
    brName: bridgeName,
    cidr: z.cidrv4(expected("an IPv4 CIDR such as 10.20.0.0/24")),
    dhcp: z.strictObject({
      used: flag,
      rangeStart: ipv4.nullable().optional(),
      rangeEnd: ipv4.nullable().optional(),
    }),
    forward: z.strictObject({
      used: flag,
      type: z.enum(FORWARD_MODES).nullable().optional(),
    }),
    name: libvirtName,
    netmask: ipv4,
  })
  .superRefine((net, ctx) => {
    const cidr = parseCidr(net.cidr);
    const prefix = maskToPrefix(net.netmask);
    if (prefix !== cidr.prefix) {
      ctx.addIssue({
        code: "custom",
        path: ["netmask"],
        message: `does not match cidr ${net.cidr}`,
      });
    }
    if (!cidrContains(cidr, net.brAddr)) {
      ctx.addIssue({ code: "custom", path: ["brAddr"], message: `is outside cidr ${net.cidr}` });
    }
    if (net.dhcp.used) {
      for (const key of ["rangeStart", "rangeEnd"] as const) {
        const address = net.dhcp[key];
        if (!address) {
          ctx.addIssue({
            code: "custom",
            path: ["dhcp", key],
            message: "required when dhcp.used is true",
          });
        } else if (!cidrContains(cidr, address)) {
          ctx.addIssue({
            code: "custom",
            path: ["dhcp", key],
            message: `is outside cidr ${net.cidr}`,
          });
        }
      }
      const { rangeStart, rangeEnd } = net.dhcp;
      if (rangeStart && rangeEnd && ipv4ToInt(rangeStart) > ipv4ToInt(rangeEnd)) {
        ctx.addIssue({ code: "custom", path: ["dhcp"], message: "rangeStart is after rangeEnd" });
      }
    }
    if (net.forward.used && !net.forward.type) {
      ctx.addIssue({
        code: "custom",
        path: ["forward", "type"],
        message: "required when forward.used is true",
      });
    }
  });

function uniqueNames(kind: string, items: readonly { name: string }[], ctx: z.RefinementCtx) {
  const seen = new Set<string>();
  items.forEach((item, index) => {
    if (seen.has(item.name)) {
      ctx.addIssue({
        code: "custom",
        path: [kind, index, "name"],
        message: `${item.name} is defined twice`,
      });
    }
    seen.add(item.name);
  });
}

export const networkFileSchema = z
  .strictObject(
    {
      "jinja-template": configPath,
      networks: z.array(networkSchema, expected("a list of networks")),
    },
    expected("a mapping {jinja-template, networks}"),
  )
  .superRefine((file, ctx) => uniqueNames("networks", file.networks, ctx));

/**
 * The SHA-256 an installer ISO must have, as sha256sum prints it (64 hex digits, either case;
 * kept in lower case, as sha256sum writes it).
 */
const sha256Digest = z
  .string(expected("a SHA-256 digest: 64 hex digits"))
  .trim()
  .regex(/^[0-9A-Fa-f]{64}$/, expected("a SHA-256 digest: 64 hex digits"))
  .transform((digest) => digest.toLowerCase());

const domainSchema = z.strictObject({
  disk: remotePath,
  interfaces: z
    .array(
      z.strictObject({
        name: libvirtName,
        type: z.enum(["bridge", "network"], expected('"bridge" or "network"')),
      }),
      expected("a list of interfaces"),
    )
    .min(1, expected("at least one interface")),
  iso: z
    .strictObject({
      URL: httpUrl.nullable().optional(),
      location: remotePath.nullable().optional(),
      sha256: sha256Digest.nullable().optional(),
      used: flag,
    })
    .superRefine((iso, ctx) => {
      if (!iso.used) return;
      for (const key of ["URL", "location"] as const) {
        if (!iso[key]) {
          ctx.addIssue({ code: "custom", path: [key], message: "required when iso.used is true" });
        }
      }
    }),
  memory: positiveInt,
  name: libvirtName,
  vcpus: positiveInt,
});

export const domainFileSchema = z
  .strictObject(
    {
      "jinja-template": configPath,
      domains: z.array(domainSchema, expected("a list of domains")),
    },
    expected("a mapping {jinja-template, domains}"),
  )
  .superRefine((file, ctx) => uniqueNames("domains", file.domains, ctx));

export const vpnSchema = z.strictObject(
  {
    server: hostOrAddress,
    authentication: z.strictObject({ pass: secretSource, user: text("an LDAP DN") }),
    directory: z.strictObject({ root: text("an LDAP DN"), user: text("an LDAP RDN") }),
    user: z.strictObject({
      objects: z
        .array(text("an object class"), expected("a list of object classes"))
        .min(1, expected("at least one object class")),
    }),
    database: configPath,
    permanent_users: z.array(text("a user name"), expected("a list of user names")).nullish(),
    // Extension: how the directory server is reached (default ldap://<server> with StartTLS).
    ldap: z
      .strictObject(
        {
          url: ldapUrl.optional(),
          start_tls: z.boolean(expected("true or false")).optional(),
          ca: configPath.nullish(),
          verify: z.boolean(expected("true or false")).default(true),
          timeout: positiveInt.default(10),
        },
        expected("a mapping {url, start_tls, ca, verify, timeout}"),
      )
      .nullish(),
  },
  expected("a mapping {server, authentication, directory, user, database, permanent_users, ldap}"),
);

const emailAddress = z.email(expected("an e-mail address"));

/** pharos.yaml `handover.email`: the SMTP server hand-over messages go through. */
export const emailSchema = z.strictObject(
  {
    host: hostOrAddress,
    port: port.optional(),
    security: z
      .enum(["tls", "starttls", "none"], expected('"tls", "starttls" or "none"'))
      .default("starttls"),
    user: text("an SMTP user name").nullish(),
    pass: secretSource.nullish(),
    ca: configPath.nullish(),
    from: text("a From address, e.g. LaaS <laas@lab.example.org>"),
    operators: z.array(emailAddress, expected("a list of e-mail addresses")).default([]),
    timeout: positiveInt.default(30),
  },
  expected("a mapping {host, port, security, user, pass, ca, from, operators, timeout}"),
);

/**
 * pharos.yaml `handover.end_notice`: the mail to the booking user before their booking ends, or
 * false for none. Hours may be fractions (0.5 is half an hour).
 */
export const endNoticeSchema = z.union(
  [
    z.boolean(expected("true, false or a mapping {before_hours, min_booking_hours}")),
    z.strictObject(
      {
        before_hours: positiveNumber.default(48),
        min_booking_hours: positiveNumber.optional(),
      },
      expected("a mapping {before_hours, min_booking_hours}"),
    ),
  ],
  expected("true, false or a mapping {before_hours, min_booking_hours}"),
);

/** pharos.yaml `handover:` (extension): access for the booking user and telling them. */
export const handoverSchema = z.strictObject(
  {
    sealing_key: secretSource,
    vpn: z.boolean(expected("true or false")).default(true),
    root_password: z.boolean(expected("true or false")).default(true),
    ssh_key: z.boolean(expected("true or false")).default(true),
    dashboard_notes: z.boolean(expected("true or false")).default(true),
    email: emailSchema,
    sweep_interval: positiveInt.default(3600),
    end_notice: endNoticeSchema.default(true),
  },
  expected(
    "a mapping {sealing_key, vpn, root_password, ssh_key, dashboard_notes, email, sweep_interval, end_notice}",
  ),
);

/** Dashboard installer names meaning "no installer" (the seed's `null` and `None`). */
export function isNoInstaller(name: string | null | undefined): boolean {
  if (name === null || name === undefined) return true;
  const lower = name.trim().toLowerCase();
  return lower === "" || lower === "none" || lower === "null";
}

export const installerSchema = z.strictObject(
  {
    database: configPath,
    dhcp_log: remotePath,
    // Extension: what dhcp_log is (lib/lab/dhcp.ts); the daemon's tagged lines of a system log
    // by default, as the seed read it.
    dhcp_log_format: z
      .enum(LEASE_FORMATS, expected(LEASE_FORMATS.map((f) => `"${f}"`).join(", ")))
      .default("syslog"),
    dhcp_server: hostOrAddress.nullable(),
    dhcp_server_host_key: hostKeyFingerprint.nullish(),
    fog: z.strictObject(
      {
        api_key: secretSource,
        server: httpUrl,
        user_key: secretSource,
        image_id: positiveInt,
        poll_interval: positiveInt.default(15),
        imaging_timeout: deadline("imaged").default(3600),
        request_timeout: positiveInt.default(30),
      },
      expected("a mapping {api_key, server, user_key, image_id}"),
    ),
    installer: z
      .string(expected("an installer name or null"))
      .nullable()
      .transform((name) => (isNoInstaller(name) ? null : (name?.trim() ?? null))),
    logging_dir: configPath,
    scenario: z
      .string(expected("a scenario name or null"))
      .nullish()
      .transform((s) => (s?.trim() ? s.trim() : null)),
    hypervisor_config: z.strictObject(
      { networks: configPath, vms: configPath },
      expected("a mapping {networks, vms}"),
    ),
    // Extension: how the pod is built on the host and how long its stages may take.
    pod: z
      .strictObject(
        {
          boot_timeout: deadline("host-up").default(900),
          install_timeout: deadline("installer-done").default(4 * 3600),
          disk_size: positiveInt.default(100),
          remote_dir: remotePath.default("/var/lib/laas"),
          libvirt_uri: z.string(expected("a libvirt URI")).min(1).default("qemu:///system"),
        },
        expected("a mapping {boot_timeout, install_timeout, disk_size, remote_dir, libvirt_uri}"),
      )
      .default({
        boot_timeout: 900,
        install_timeout: 4 * 3600,
        disk_size: 100,
        remote_dir: "/var/lib/laas",
        libvirt_uri: "qemu:///system",
      }),
    inventory: configPath,
    vpn_config: configPath,
  },
  expected("a mapping (installer config)"),
);

/** Extension: the status page and metrics endpoint (`laas ui`, `laas listen --ui`, lib/web/). */
export const webSchema = z.strictObject(
  {
    // Where the page is served; anything but loopback needs a token.
    address: z.string(expected("an IP address to listen on")).default("127.0.0.1"),
    port: port.default(8080),
    token: secretSource.nullish(),
  },
  expected("a mapping (web)"),
);

/** Which API the dashboard speaks: the 2017 Pharos bookings API, or the later LaaS jobs API. */
export const DASHBOARD_APIS = ["bookings", "jobs"] as const;

/**
 * A lab's name on the dashboard, one segment of the jobs API's URLs (`api/labs/<lab>/`): a safe
 * alphabet, and never "." or "..", which URL parsing would resolve away.
 */
const dashboardLabName = z
  .string(expected("a lab name"))
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]*$/,
    expected("a lab name (letters, digits, '-', '_', '.'; starting with a letter or digit)"),
  );

/** A dashboard image id as a YAML key gives it: the decimal text of a positive integer. */
const isImageIdText = (key: string) =>
  /^[1-9][0-9]*$/.test(key) && Number.isSafeInteger(Number(key));

/** pharos.yaml `jobs:` (with `dashboard_api: jobs`): the lab on the dashboard, its images in FOG. */
export const jobsApiSchema = z.strictObject(
  {
    lab: dashboardLabName,
    images: z
      .record(
        z.string(),
        positiveInt,
        expected("a mapping of the dashboard's image id to a FOG image id"),
      )
      .superRefine((images, ctx) => {
        const ids = Object.keys(images);
        if (ids.length === 0) {
          ctx.addIssue({ code: "custom", path: [], message: "expected at least one image" });
        }
        for (const id of ids.filter((key) => !isImageIdText(key))) {
          ctx.addIssue({
            code: "custom",
            path: [id],
            message: "expected a dashboard image id (a positive integer)",
          });
        }
      }),
  },
  expected("a mapping {lab, images}"),
);

export const pharosSchema = z.strictObject(
  {
    dashboard: httpUrl,
    database: configPath,
    default_configs: z.record(
      z.string(),
      configPath,
      expected("a mapping of installer name to config file"),
    ),
    inventory: configPath,
    logging_dir: configPath,
    polling: positiveNumber,
    // Extension: seconds between two looks of the lab's watcher.
    watch_interval: positiveInt
      .max(LONGEST_WATCH_INTERVAL_SECONDS, {
        error: `expected at most ${LONGEST_WATCH_INTERVAL_SECONDS} seconds (a third of the waits' HeartbeatSeconds)`,
      })
      .optional(),
    // Extension: the dashboard's API; with "jobs", `token` is the lab token and `jobs` is required.
    dashboard_api: z
      .enum(DASHBOARD_APIS, expected(DASHBOARD_APIS.map((a) => `"${a}"`).join(" or ")))
      .default("bookings"),
    jobs: jobsApiSchema.nullish(),
    token: secretSource,
    // Extension: failed provisions or cleanings of one host in a row before it stays quarantined.
    quarantine_after: positiveInt.max(10, { error: "expected at most 10 failures" }).default(2),
    // Extension: days an ended booking stays in the store (lifecycle/retention.ts).
    booking_retention_days: positiveInt
      .max(MAX_BOOKING_RETENTION_DAYS, {
        error: `expected at most ${MAX_BOOKING_RETENTION_DAYS} days`,
      })
      .default(DEFAULT_BOOKING_RETENTION_DAYS),
    // Extension: the networks lab hosts live on; no address outside them is ever reached.
    lab_subnets: z
      .array(
        z.cidrv4(expected("an IPv4 CIDR such as 10.10.0.0/24")),
        expected("a list of IPv4 CIDRs"),
      )
      .min(1, expected("at least one IPv4 CIDR"))
      .nullish(),
    power: powerSchema.nullish(),
    relay: relaySchema.nullish(),
    handover: handoverSchema.nullish(),
    web: webSchema.nullish(),
  },
  expected("a mapping (pharos config)"),
);

export type RawPower = z.output<typeof powerSchema>;
export type RawRelay = z.output<typeof relaySchema>;
export type RawPowerOverride = z.output<typeof powerOverrideSchema>;
export type RawIpmi = z.output<typeof ipmiSchema>;
export type RawInventory = z.output<typeof inventorySchema>;
export type RawNetworkFile = z.output<typeof networkFileSchema>;
export type RawDomainFile = z.output<typeof domainFileSchema>;
export type RawVpn = z.output<typeof vpnSchema>;
export type RawHandover = z.output<typeof handoverSchema>;
export type RawWeb = z.output<typeof webSchema>;
export type RawInstaller = z.output<typeof installerSchema>;
export type RawJobsApi = z.output<typeof jobsApiSchema>;
export type RawPharos = z.output<typeof pharosSchema>;

/** Misspellings in the seed that its users' files carry: alias → field. */
export const PHAROS_ALIASES = { poling: "polling" } as const;
export const VPN_ALIASES = { authenticaion: "authentication" } as const;

/**
 * Renames alias keys to their field before validation. Giving both is an issue rather than a
 * silent choice.
 */
export function applyAliases(
  data: unknown,
  aliases: Readonly<Record<string, string>>,
): { data: unknown; issues: Issue[] } {
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    return { data, issues: [] };
  }
  const out: Record<string, unknown> = { ...data };
  const issues: Issue[] = [];
  for (const [alias, field] of Object.entries(aliases)) {
    if (!(alias in out)) continue;
    if (field in out) {
      issues.push({ path: alias, message: `give either ${field} or ${alias}, not both` });
    } else {
      out[field] = out[alias];
    }
    delete out[alias];
  }
  return { data: out, issues };
}
