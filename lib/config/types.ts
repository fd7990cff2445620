/**
 * The lab's configuration after loading and validation (see load.ts): YAML keys in the seed's
 * snake_case vocabulary become camelCase here, relative paths are absolute, secrets are Secret,
 * referenced files (inventory, vpn, hypervisor networks/domains, installer configs) are loaded.
 */
import type { LeaseFormat } from "../lab/dhcp";
import type { Secret } from "../secret";

export interface PowerConfig {
  /**
   * How the host is made to network-boot: "ssh" logs in and runs `reboot`; "ipmi" has its BMC
   * boot it from PXE (`ipmi`). The SSH fields stay the host's login after imaging either way.
   */
  type: "ssh" | "ipmi";
  user: string;
  port: number;
  /** Private key for the SSH login. */
  key: Secret;
  /**
   * Expected host key, as OpenSSH prints it (`SHA256:…` fingerprint). When absent the key seen
   * first is recorded on the host and required afterwards (see docs/configuration.md).
   */
  hostKey: string | null;
  /** Seconds to wait for the SSH login and the command. */
  timeoutSeconds: number;
  /** The host's BMC; set (complete) when `type` is "ipmi", else null. */
  ipmi: IpmiConfig | null;
}

/** A host's BMC, driven by `ipmitool -I lanplus` on the relay (extension). */
export interface IpmiConfig {
  address: string;
  /** UDP port of the BMC's RMCP+ service (623). */
  port: number;
  user: string;
  /** Given to ipmitool on its standard input (`-f /dev/stdin`), never in its argv. */
  password: Secret;
  /** RMCP+ cipher suite (`-C`): 3 (SHA1, AES) by default, 17 (SHA256, AES) where supported. */
  cipherSuite: number;
  /** The next boot is PXE in UEFI mode (`options=efiboot`) rather than legacy BIOS. */
  efiBoot: boolean;
  /** Seconds from the first ipmitool command until the power must read "on": the deadline. */
  timeoutSeconds: number;
}

/** pharos.yaml `power:`: its `ipmi` holds what all BMCs share (user, password…), if anything. */
export type LabPowerConfig = Omit<PowerConfig, "ipmi"> & { ipmi: Partial<IpmiConfig> | null };

/** An inventory entry's power fields: any of the lab's, its `ipmi` merged field by field. */
export type PowerOverride = Partial<Omit<PowerConfig, "ipmi">> & { ipmi?: Partial<IpmiConfig> };

/** The lab-side relay every lab command goes through (extension). */
export interface RelayConfig {
  host: string;
  port: number;
  user: string;
  key: Secret;
  /** The relay's host key (`SHA256:…`), pinned: a different key is refused. */
  hostKey: string;
  /** Seconds allowed to connect and log in. */
  timeoutSeconds: number;
  /**
   * How a host's first key after imaging is shown to be the booked host's (HostIdentityProof):
   * the relay's neighbour table (default), pinned keys only, or blind trust (warned opt-in).
   */
  hostIdentity: "neighbour" | "pinned" | "trust-first-key";
}

export interface InventoryHost {
  /** Dashboard resource id (string form of the YAML key). */
  resourceId: string;
  /** FOG host name. */
  name: string;
  /** Static address of the host; overrides what FOG knows. */
  address: string | null;
  /** Per-host power settings; merged over the lab default in pharos.yaml. */
  power: PowerOverride | null;
}

export interface Inventory {
  file: string;
  hosts: InventoryHost[];
}

export interface FogConfig {
  /** Web root of the FOG server, always ending with "/" (e.g. http://fog.example.org/fog/). */
  server: string;
  apiKey: Secret;
  userKey: Secret;
  imageId: number;
  /**
   * Seconds between two looks at task/current while imaging (default 15); the lab's watcher
   * looks as often as the most frequent installer config asks, unless `watch_interval` says.
   */
  pollSeconds: number;
  /** Imaging deadline in seconds, from the start of the wait for the deploy (default 3600). */
  imagingTimeoutSeconds: number;
  /** Per-request timeout in seconds (default 30). */
  requestTimeoutSeconds: number;
}

export interface NetworkDefinition {
  name: string;
  brName: string;
  brAddr: string;
  cidr: string;
  netmask: string;
  dhcp: { used: boolean; rangeStart: string | null; rangeEnd: string | null };
  forward: { used: boolean; type: string | null };
}

export interface NetworkFile {
  file: string;
  /** The seed's `jinja-template`: template used to render each network's libvirt XML. */
  template: string;
  networks: NetworkDefinition[];
}

export interface DomainDefinition {
  name: string;
  disk: string;
  /** KiB, as the seed says. */
  memory: number;
  vcpus: number;
  interfaces: { name: string; type: "bridge" | "network" }[];
  /** sha256: what the fetched ISO must hash to (lower-case hex), or null: not checked. */
  iso: { used: boolean; url: string | null; location: string | null; sha256: string | null };
}

export interface DomainFile {
  file: string;
  template: string;
  domains: DomainDefinition[];
}

/** How the directory server is reached (vpn config `ldap:`, an extension of the seed). */
export interface LdapConnection {
  /** `ldap://host[:port]` or `ldaps://host[:port]`; default `ldap://<server>`. */
  url: string;
  /** Upgrade an `ldap://` connection with StartTLS before binding (default true). */
  startTls: boolean;
  /** PEM certificates to trust for the server's certificate; null: the system's CAs. */
  caPem: string | null;
  /** Whether the server's certificate is verified (default true; false is for labs only). */
  verifyCertificate: boolean;
  /** Seconds allowed to connect and for each operation (default 10). */
  timeoutSeconds: number;
}

export interface VpnConfig {
  file: string;
  /** The VPN server's name, as given to users. */
  server: string;
  authentication: { user: string; pass: Secret };
  directory: { root: string; user: string };
  user: { objects: string[] };
  database: string;
  permanentUsers: string[];
  ldap: LdapConnection;
}

/** Outgoing mail for hand-overs (pharos.yaml `handover.email`). */
export interface EmailConfig {
  host: string;
  port: number;
  /** "tls": TLS from the first byte (smtps, 465); "starttls": required upgrade; "none": plain. */
  security: "tls" | "starttls" | "none";
  /** SMTP login, when the server wants one. */
  user: string | null;
  pass: Secret | null;
  /** PEM certificates to trust for the server's certificate; null: the system's CAs. */
  caPem: string | null;
  /** From: header, e.g. `LaaS <laas@lab.example.org>`. */
  from: string;
  /**
   * Lab operators: told of each hand-over (a notice without credentials) and mailed each failure
   * with its whole error; the recipients of a manual booking's hand-over (lib/handover/recipients.ts).
   */
  operators: string[];
  timeoutSeconds: number;
}

/**
 * Handing the pod over (pharos.yaml `handover:`, an extension of the seed): the VPN user, a fresh
 * root password, the user's SSH key, the message that tells them, and the dashboard's status
 * notes. Absent: bookings end at "ready" with none of it.
 */
export interface HandoverConfig {
  /** 32-byte key sealing the credentials between their making and their delivery. */
  sealingKey: Secret;
  vpn: boolean;
  rootPassword: boolean;
  sshKey: boolean;
  /** Status notes on the dashboard at each stage. */
  dashboardNotes: boolean;
  email: EmailConfig;
  /** Seconds between two directory sweeps for VPN users no active booking uses (default 3600). */
  sweepSeconds: number;
  /** The mail to the booking user before their booking ends; null: none. */
  endNotice: EndNoticeConfig | null;
}

/** pharos.yaml `handover.end_notice` (lib/lifecycle/end-notice.ts). */
export interface EndNoticeConfig {
  /** How long before the end the user is told (default 48). */
  beforeHours: number;
  /** Bookings shorter than this get no notice (default beforeHours + 24). */
  minBookingHours: number;
}

export interface PodSettings {
  /** Seconds from the end of imaging until the host must answer SSH (default 900). */
  bootTimeoutSeconds: number;
  /** Seconds the installer may run (default 4 h). */
  installTimeoutSeconds: number;
  /** Size of each VM's qcow2 disk, GB (default 100). */
  diskSizeGB: number;
  /** Directory on the host for installer scripts and their logs (default /var/lib/laas). */
  remoteDir: string;
  /** libvirt connection URI on the host (default qemu:///system). */
  libvirtUri: string;
}

export interface InstallerConfig {
  file: string;
  /** Installer name as the dashboard spells it, or null for "no installer". */
  installer: string | null;
  database: string;
  dhcpLog: string;
  /** What dhcpLog is: dhcpd's or dnsmasq's lease file, or a system log (lib/lab/dhcp.ts). */
  dhcpLogFormat: LeaseFormat;
  dhcpServer: string | null;
  /**
   * Pinned host key of dhcp_server (extension), reached through the relay with the relay's user
   * and key; required when dhcp_server is set.
   */
  dhcpServerHostKey: string | null;
  fog: FogConfig;
  loggingDir: string;
  scenario: string | null;
  hypervisor: { networks: NetworkFile; vms: DomainFile };
  /** Extension: building the pod on the host. */
  pod: PodSettings;
  inventory: Inventory;
  vpn: VpnConfig;
}

export interface PharosConfig {
  file: string;
  dashboard: string;
  /**
   * Which API the dashboard speaks (`dashboard_api`): "bookings" (default), the 2017 Pharos API
   * (`GET /api/bookings/`); "jobs", the later LaaS jobs API of the lab `jobs.lab`.
   */
  dashboardApi: "bookings" | "jobs";
  /** The dashboard's API token; with the jobs API, the lab token the dashboard issued. */
  token: Secret;
  /** The lab on the jobs API and its images (`jobs:`): set when dashboardApi is "jobs", else null. */
  jobs: JobsApiConfig | null;
  /** Directory of the embedded store (dynalite, persisted). */
  database: string;
  /**
   * Installer configs by the name the dashboard uses; the key `null` (YAML `null` or `none`)
   * is used when the booking asks for no installer. Lookup is case-insensitive.
   */
  defaultConfigs: Map<string | null, InstallerConfig>;
  /** Config whose image is written at release ("clean" image): default_configs' `null` entry. */
  cleanConfig: InstallerConfig;
  inventory: Inventory;
  loggingDir: string;
  /** The seed's meaning: how many times a second the dashboard is polled (0.1 → every 10 s). */
  polling: number;
  /**
   * Seconds between two looks of the lab's watcher at what workflows wait for (imaging, boots,
   * installers): `watch_interval`, by default the smallest `fog.poll_interval` of the installers.
   */
  watchSeconds: number;
  /**
   * A host whose provision or cleaning fails is cleaned automatically and returned to the pool;
   * after this many failures in a row (`quarantine_after`, default 2) it stays quarantined until
   * an operator releases it (`laas host release`).
   */
  quarantineAfter: number;
  /**
   * Days an ended booking stays in the store, counted from its end or the moment it ended,
   * whichever is later (`booking_retention_days`, default 30); then it is deleted (DynamoDB TTL in
   * the cloud, the sweep locally). See lifecycle/retention.ts.
   */
  bookingRetentionDays: number;
  /**
   * The lab's subnets (CIDRs): every host address reached (leased, static, from FOG) must lie in
   * one, and the relay forwards nowhere else. Required when power or relay is configured.
   */
  labSubnets: string[];
  /** Lab-wide power defaults, merged under each inventory host's own. */
  power: LabPowerConfig | null;
  /** The lab-side relay; needed for everything after imaging (address, pod, installer). */
  relay: RelayConfig | null;
  handover: HandoverConfig | null;
  /** The status page (`web:`, an extension); null: served on loopback with no token. */
  web: WebConfig | null;
}

/** pharos.yaml `jobs:`: the lab as the dashboard's jobs API knows it (extension). */
export interface JobsApiConfig {
  /** The lab's name on the dashboard, a segment of the API's URLs (`api/labs/<lab>/`). */
  lab: string;
  /** dashboard image id (as its decimal text) -> FOG image id */
  images: Map<string, number>;
}

/** Where `laas ui` serves the page and the metrics, and the token that guards them. */
export interface WebConfig {
  address: string;
  port: number;
  /** Required off loopback (lib/web/server.ts) and in the cloud (functions/web.ts). */
  token: Secret | null;
}
