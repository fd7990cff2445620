/**
 * What a simulated lab host (or the relay) does with a command line: the argv is read back from
 * the line the product sends (every word single-quoted), and the commands the product runs on a
 * freshly imaged host are emulated against in-memory state — files and directories, libvirt
 * networks and domains, the detached installer, account passwords (chpasswd), authorized SSH
 * keys and the checked fetch of an ISO (the product's fixed scripts, recognised word for word).
 * Outputs, error messages and exit codes are those of the real tools (virsh 9, GNU coreutils,
 * curl, qemu-img, Debian 12's chpasswd), so the product's parsing and error handling meet what a
 * real host says.
 */
import { createHash, randomBytes } from "node:crypto";
import { posix } from "node:path";
import { AUTHORIZED_KEY_SCRIPT, SET_PASSWORD_SCRIPT } from "../lib/access/host-credentials";
import { ISO_FETCH_SCRIPT, ISO_MISMATCH_STATUS } from "../lib/pod/iso";

export interface ShellResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * The argv of a command line in which every word is single-quoted, as the product's relay adapter
 * writes it (`'a' 'it'\''s'`), or null for any other line. Strict on purpose: a line the product
 * did not quote word by word must not pass for one.
 */
export function parseQuotedCommand(line: string): string[] | null {
  const words: string[] = [];
  let at = 0;
  while (at < line.length) {
    if (line[at] !== "'") return null;
    let word = "";
    for (;;) {
      const close = line.indexOf("'", at + 1);
      if (close < 0) return null;
      word += line.slice(at + 1, close);
      at = close + 1;
      // '\'' is a quote inside a word: close, escaped quote, reopen.
      if (!line.startsWith("\\''", at)) break;
      word += "'";
      at += 2;
    }
    words.push(word);
    if (at === line.length) break;
    if (line[at] !== " " || at + 1 === line.length) return null;
    at += 1;
  }
  return words.length > 0 ? words : null;
}

const ok = (stdout = ""): ShellResult => ({ exitCode: 0, stdout, stderr: "" });
const fail = (exitCode: number, stderr: string): ShellResult => ({
  exitCode,
  stdout: "",
  stderr: stderr.endsWith("\n") ? stderr : `${stderr}\n`,
});

/** bash's answer to a program it cannot find. */
export function commandNotFound(name: string): ShellResult {
  return fail(127, `bash: ${name}: command not found`);
}

/**
 * GNU grep with the options the product uses (-a -i -F, patterns by -e, `--`, one file), over a
 * file `read` answers (null: no such file). Exit 0 when a line matched, 1 when none, 2 on errors.
 */
export function grep(argv: readonly string[], read: (path: string) => string | null): ShellResult {
  const patterns: string[] = [];
  let ignoreCase = false;
  let fixed = false;
  const files: string[] = [];
  let options = true;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (options && arg === "--") {
      options = false;
    } else if (options && arg === "-e") {
      const pattern = argv[++i];
      if (pattern === undefined) return fail(2, "grep: option requires an argument -- 'e'");
      patterns.push(pattern);
    } else if (options && /^-[aiF]+$/.test(arg)) {
      if (arg.includes("i")) ignoreCase = true;
      if (arg.includes("F")) fixed = true;
    } else if (options && arg.startsWith("-") && arg !== "-") {
      return fail(2, `grep: invalid option -- '${arg.slice(1)}'`);
    } else {
      files.push(arg);
    }
  }
  // Without -F the simulation would have to speak basic regular expressions: refused loudly.
  if (!fixed) {
    return fail(2, "grep: the simulated grep only matches fixed strings (-F)");
  }
  if (patterns.length === 0 || files.length !== 1) {
    return fail(2, "Usage: grep [OPTION]... PATTERNS [FILE]...");
  }
  const file = files[0]!;
  const text = read(file);
  if (text === null) return fail(2, `grep: ${file}: No such file or directory`);
  const fold = (s: string) => (ignoreCase ? s.toLowerCase() : s);
  const wanted = patterns.map(fold);
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const matched = lines.filter((line) => wanted.some((pattern) => fold(line).includes(pattern)));
  if (matched.length === 0) return { exitCode: 1, stdout: "", stderr: "" };
  return ok(`${matched.join("\n")}\n`);
}

export interface HostShellOptions {
  /** Host name, for the installer's log. */
  name: string;
  /** From the detached installer's launch to its status file (default 3000 ms). */
  installerMs?: number;
  /** Up to this many milliseconds more, drawn for each run (default 0). */
  installerJitterMs?: number;
  /** The installer ends with status 1 and an error in its log. */
  installerFails?: boolean;
  /** How long `curl` takes to fetch a file (default 20 ms). */
  fetchMs?: number;
  /** Called as the detached installer writes its exit status. */
  onInstallerDone?: () => void;
}

export interface DetachedRun {
  /** `<base>.log` and `<base>.status` are its files. */
  base: string;
  /** The command the wrapper runs. */
  argv: string[];
  at: Date;
}

export interface SimNetwork {
  name: string;
  bridge: string | null;
  xml: string;
  active: boolean;
  autostart: boolean;
}

export interface SimInterface {
  type: string;
  source: string;
  model: string | null;
  mac: string;
  /** Host-side device while the domain runs (vnetN). */
  device: string | null;
}

export interface SimDomain {
  name: string;
  xml: string;
  interfaces: SimInterface[];
  /** Files the domain's disks (and CD-ROMs) are backed by. */
  disks: string[];
  running: boolean;
}

/** Directories a freshly installed host with libvirt has. */
const BASE_DIRECTORIES = [
  "/",
  "/dev",
  "/root",
  "/tmp",
  "/var",
  "/var/lib",
  "/var/lib/libvirt",
  "/var/lib/libvirt/images",
  "/var/log",
];

/** An entry of the host's passwd database. */
export interface SimAccount {
  uid: number;
  gid: number;
  home: string;
}

/** The accounts of a freshly installed system. */
const BASE_ACCOUNTS: readonly [string, SimAccount][] = [
  ["root", { uid: 0, gid: 0, home: "/root" }],
];

/** The emulated userland of one host: its state lives until the host is imaged again. */
export class HostShell {
  readonly files = new Map<string, string>();
  readonly directories = new Set<string>(BASE_DIRECTORIES);
  /** The passwd database (getent passwd); tests may add accounts. */
  readonly accounts = new Map<string, SimAccount>(
    BASE_ACCOUNTS.map(([name, account]) => [name, { ...account }]),
  );
  /** The last password chpasswd set per account. */
  readonly passwords = new Map<string, string>();
  /** The static host name hostnamectl set; null until set since the last imaging. */
  hostname: string | null = null;
  readonly networks = new Map<string, SimNetwork>();
  readonly domains = new Map<string, SimDomain>();
  /** Installers started detached since the last imaging, oldest first. */
  readonly detached: DetachedRun[] = [];
  readonly #options: HostShellOptions;
  readonly #timers = new Set<NodeJS.Timeout>();
  #nextVnet = 0;

  constructor(options: HostShellOptions) {
    this.#options = options;
  }

  /**
   * The key lines in each account's ~/.ssh/authorized_keys (comments and blank lines left out),
   * read from the files as they stand; accounts without the file are absent.
   */
  get authorizedKeys(): Map<string, string[]> {
    const keys = new Map<string, string[]>();
    for (const [name, account] of this.accounts) {
      const content = this.files.get(authorizedKeysPath(account));
      if (content === undefined) continue;
      keys.set(name, keyLines(content));
    }
    return keys;
  }

  /** What imaging does: a fresh disk, and whatever ran on the old system is gone. */
  reset(): void {
    this.close();
    this.files.clear();
    this.directories.clear();
    for (const directory of BASE_DIRECTORIES) this.directories.add(directory);
    this.accounts.clear();
    for (const [name, account] of BASE_ACCOUNTS) this.accounts.set(name, { ...account });
    this.passwords.clear();
    this.networks.clear();
    this.domains.clear();
    this.detached.length = 0;
    this.#nextVnet = 0;
  }

  /** Stops background work (a running installer, a fetch under way). */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  /** Runs one command; `stdin` reads the command's standard input to its end. */
  async run(argv: readonly string[], stdin: () => Promise<string>): Promise<ShellResult> {
    const [program = "", ...args] = argv;
    switch (program) {
      case "true":
        return ok();
      case "virsh":
        return this.#virsh(args, stdin);
      case "mkdir":
        return this.#mkdir(args);
      case "curl":
        return this.#curl(args);
      case "qemu-img":
        return this.#qemuImg(args);
      case "cp":
        return this.#cp(args, stdin);
      case "rm":
        return this.#rm(args);
      case "cat":
        return this.#cat(args);
      case "test":
        return this.#test(args);
      case "tail":
        return this.#tail(args);
      case "grep":
        return grep(argv, (path) => this.files.get(this.#path(path)) ?? null);
      case "setsid":
        return this.#setsid(args);
      case "chpasswd":
        return args.length === 0
          ? this.#chpasswd(await stdin())
          : fail(2, "chpasswd: the simulated chpasswd takes no options");
      case "hostnamectl":
        return this.#hostnamectl(args);
      case "sh":
        return this.#sh(args, stdin);
      case "sudo":
        // The login may be another user than root; the simulated host lets it do anything.
        if (args[0] === "-n" && args.length > 1) return this.run(args.slice(1), stdin);
        return fail(1, "sudo: the simulated host runs only `sudo -n COMMAND…`");
      default:
        return commandNotFound(program);
    }
  }

  /** hostnamectl (systemd 252): `set-hostname NAME` only; a name it cannot take is refused. */
  #hostnamectl(args: readonly string[]): ShellResult {
    const [verb, name, ...rest] = args;
    if (verb !== "set-hostname" || name === undefined || rest.length > 0) {
      return fail(1, "hostnamectl: the simulated hostnamectl runs only `set-hostname NAME`");
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(name)) {
      return fail(1, `Invalid static hostname '${name}'`);
    }
    this.hostname = name;
    return ok();
  }

  /**
   * chpasswd (shadow 4.13 with PAM, as on Debian 12): `account:password` lines, each applied on
   * its own; a bad line is reported and the others still count; exit 1 if any was bad.
   */
  #chpasswd(input: string): ShellResult {
    const lines = input.split("\n");
    if (lines.at(-1) === "") lines.pop();
    let stderr = "";
    lines.forEach((line, index) => {
      const colon = line.indexOf(":");
      if (colon < 0) {
        stderr += `chpasswd: line ${index + 1}: missing new password\n`;
        return;
      }
      const account = line.slice(0, colon);
      if (!this.accounts.has(account)) {
        stderr +=
          `chpasswd: (user ${account}) pam_chauthtok() failed, error:\n` +
          "Authentication token manipulation error\n" +
          `chpasswd: (line ${index + 1}, user ${account}) password not changed\n`;
        return;
      }
      this.passwords.set(account, line.slice(colon + 1));
    });
    return { exitCode: stderr === "" ? 0 : 1, stdout: "", stderr };
  }

  /** `sh -c SCRIPT sh ARGS…` for the product's fixed scripts, recognised word for word. */
  async #sh(args: readonly string[], stdin: () => Promise<string>): Promise<ShellResult> {
    const [dashC, script, name, ...positional] = args;
    if (dashC === "-c" && name === "sh" && script === SET_PASSWORD_SCRIPT) {
      return positional.length === 0
        ? this.#setPasswordScript(await stdin())
        : fail(2, "sh: the password script takes no arguments");
    }
    if (dashC === "-c" && name === "sh" && script === AUTHORIZED_KEY_SCRIPT) {
      return this.#authorizedKeyScript(positional, await stdin());
    }
    if (dashC === "-c" && name === "sh" && script === ISO_FETCH_SCRIPT) {
      return this.#isoFetchScript(positional);
    }
    return fail(2, "sh: the simulated host runs only the product's fixed scripts");
  }

  /** SET_PASSWORD_SCRIPT: the first input line to chpasswd, lines quoting the password withheld. */
  #setPasswordScript(input: string): ShellResult {
    const entry = input.split("\n")[0] ?? "";
    const colon = entry.indexOf(":");
    if (colon < 0 || colon === entry.length - 1) {
      return fail(2, "chpasswd: expected one account:password line on standard input");
    }
    const password = entry.slice(colon + 1);
    const result = this.#chpasswd(`${entry}\n`);
    const output = `${result.stdout}${result.stderr}`;
    const lines = output.split("\n");
    if (lines.at(-1) === "") lines.pop();
    const shown = lines.map((line) =>
      line.includes(password)
        ? "chpasswd: (an output line quoting the password was withheld)"
        : line,
    );
    return {
      exitCode: result.exitCode,
      stdout: "",
      stderr: shown.length > 0 ? `${shown.join("\n")}\n` : "",
    };
  }

  /**
   * AUTHORIZED_KEY_SCRIPT: the key line on input appended to the account's authorized_keys
   * unless a (not commented-out) line has the same type and key data; prints added or present.
   */
  #authorizedKeyScript(positional: readonly string[], input: string): ShellResult {
    const refuse = (message: string) => fail(3, message);
    if (positional.length !== 1) return refuse("usage: sh -c SCRIPT sh ACCOUNT < KEY-LINE");
    const accountName = positional[0]!;
    const key = input.split("\n")[0] ?? "";
    const space = key.indexOf(" ");
    const type = space < 0 ? key : key.slice(0, space);
    const rest = space < 0 ? key : key.slice(space + 1);
    const blob = rest.split(" ")[0] ?? "";
    if (!/^[A-Za-z0-9@.-]+$/.test(type)) {
      return refuse("the key line does not start with a key type");
    }
    if (!/^[A-Za-z0-9+/=]+$/.test(blob)) return refuse("the key line has no base64 key data");
    const account = this.accounts.get(accountName);
    if (!account) return refuse(`no account ${accountName} on this host`);
    if (!this.directories.has(account.home)) {
      return refuse(`the home directory ${account.home} of ${accountName} does not exist`);
    }
    const file = authorizedKeysPath(account);
    const dir = posix.dirname(file);
    if (this.files.has(dir)) {
      return fail(1, `mkdir: cannot create directory '${dir}': File exists`);
    }
    this.directories.add(dir);
    const content = this.files.get(file) ?? "";
    const present = keyLines(content).some((line) => {
      const fields = line.split(/[ \t]+/);
      return fields.some((field, i) => field === type && fields[i + 1] === blob);
    });
    if (present) {
      this.files.set(file, content);
      return ok("present\n");
    }
    const separated = content === "" || content.endsWith("\n") ? content : `${content}\n`;
    this.files.set(file, `${separated}${key}\n`);
    return ok("added\n");
  }

  /**
   * ISO_FETCH_SCRIPT: an ISO already there with the expected SHA-256 is kept ("present");
   * otherwise curl fetches it, and a fetched file of another digest is removed (status 4). The
   * digests are those of the files' simulated contents, as sha256sum would print them.
   */
  async #isoFetchScript(positional: readonly string[]): Promise<ShellResult> {
    if (positional.length !== 3) {
      return fail(2, "usage: sh -c SCRIPT sh LOCATION URL SHA256");
    }
    const [location = "", url = "", expected = ""] = positional;
    const file = this.#path(location);
    const sha256 = (content: string) => createHash("sha256").update(content).digest("hex");
    let stderr = "";
    const present = this.files.get(file);
    if (present !== undefined) {
      const actual = sha256(present);
      if (actual === expected) return ok("present\n");
      stderr += `ISO ${location} is there with sha256 ${actual}, not ${expected}: fetched again\n`;
    }
    const fetched = await this.#curl(["-fsSL", "--retry", "3", "-o", location, "--url", url]);
    if (fetched.exitCode !== 0) return { ...fetched, stderr: `${stderr}${fetched.stderr}` };
    const actual = sha256(this.files.get(file) ?? "");
    if (actual === expected) return { exitCode: 0, stdout: "fetched\n", stderr };
    this.files.delete(file);
    return {
      exitCode: ISO_MISMATCH_STATUS,
      stdout: "",
      stderr:
        `${stderr}ISO ${location} from ${url}: its sha256 is ${actual}, expected ${expected}; ` +
        "the file is removed\n",
    };
  }

  #path(path: string): string {
    return posix.resolve("/root", path);
  }

  #parentExists(path: string): boolean {
    return this.directories.has(posix.dirname(path));
  }

  #later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      action();
    }, ms);
    this.#timers.add(timer);
  }

  /** Splits `[options] [--] operands` for the coreutils the product calls. */
  #operands(
    tool: string,
    args: readonly string[],
    flags: string,
  ): { flags: Set<string>; operands: string[] } | ShellResult {
    const seen = new Set<string>();
    const operands: string[] = [];
    let options = true;
    for (const arg of args) {
      if (options && arg === "--") options = false;
      else if (options && arg.startsWith("-") && arg.length > 1) {
        for (const flag of arg.slice(1)) {
          if (!flags.includes(flag)) return fail(1, `${tool}: invalid option -- '${flag}'`);
          seen.add(flag);
        }
      } else operands.push(arg);
    }
    return { flags: seen, operands };
  }

  #mkdir(args: readonly string[]): ShellResult {
    const parsed = this.#operands("mkdir", args, "p");
    if ("exitCode" in parsed) return parsed;
    if (parsed.operands.length === 0) return fail(1, "mkdir: missing operand");
    for (const operand of parsed.operands) {
      const directory = this.#path(operand);
      if (this.files.has(directory)) {
        return fail(1, `mkdir: cannot create directory '${operand}': File exists`);
      }
      if (parsed.flags.has("p")) {
        for (let d = directory; !this.directories.has(d); d = posix.dirname(d)) {
          this.directories.add(d);
        }
      } else if (this.directories.has(directory)) {
        return fail(1, `mkdir: cannot create directory '${operand}': File exists`);
      } else if (!this.#parentExists(directory)) {
        return fail(1, `mkdir: cannot create directory '${operand}': No such file or directory`);
      } else {
        this.directories.add(directory);
      }
    }
    return ok();
  }

  /** `curl [flags] [--retry N] -o FILE --url URL`: the file appears once the "download" ends. */
  async #curl(args: readonly string[]): Promise<ShellResult> {
    let output: string | null = null;
    let url: string | null = null;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (arg === "-o" || arg === "--output") output = args[++i] ?? null;
      else if (arg === "--url") url = args[++i] ?? null;
      else if (arg === "--retry") i++;
      else if (/^-[fsSL]+$/.test(arg) || arg === "--fail" || arg === "--location") continue;
      else if (!arg.startsWith("-") && url === null) url = arg;
      else return fail(2, `curl: option ${arg}: is unknown`);
    }
    if (url === null) return fail(2, "curl: no URL specified");
    if (!/^https?:\/\/[^\s/]+/.test(url)) {
      return fail(3, `curl: (3) URL rejected: Malformed input to a URL function`);
    }
    await new Promise<void>((resolve) => this.#later(this.#options.fetchMs ?? 20, resolve));
    if (output === null) return ok(`simulated content of ${url}\n`);
    const file = this.#path(output);
    if (!this.#parentExists(file)) {
      return fail(
        23,
        `Warning: Failed to open the file ${output}: No such file or directory\n` +
          "curl: (23) Failure writing output to destination",
      );
    }
    this.files.set(file, `simulated content of ${url}\n`);
    return ok();
  }

  /** `qemu-img create -f qcow2 [--] FILE SIZE`. */
  #qemuImg(args: readonly string[]): ShellResult {
    if (args[0] !== "create") {
      return fail(1, `qemu-img: Command not found: ${args[0] ?? ""}`);
    }
    let format = "raw";
    const operands: string[] = [];
    let options = true;
    for (let i = 1; i < args.length; i++) {
      const arg = args[i]!;
      if (options && arg === "--") options = false;
      else if (options && arg === "-f") format = args[++i] ?? "";
      else if (options && arg.startsWith("-")) return fail(1, `qemu-img: invalid option ${arg}`);
      else operands.push(arg);
    }
    const [target, size] = operands;
    if (target === undefined) return fail(1, "qemu-img: Expecting image file name");
    const units: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
    const sized = /^(\d+)([KMGT]?)$/.exec(size ?? "");
    if (!sized) {
      return fail(
        1,
        "qemu-img: Invalid image size specified. You may use k, M, G, T, P or E suffixes for",
      );
    }
    const bytes = Number(sized[1]) * (units[sized[2] ?? ""] ?? 1);
    const file = this.#path(target);
    const formatting =
      `Formatting '${target}', fmt=${format} cluster_size=65536 extended_l2=off ` +
      `compression_type=zlib size=${bytes} lazy_refcounts=off refcount_bits=16\n`;
    if (!this.#parentExists(file)) {
      return {
        exitCode: 1,
        stdout: formatting,
        stderr: `qemu-img: ${target}: Could not create '${target}': No such file or directory\n`,
      };
    }
    this.files.set(file, `${format} image, ${bytes} bytes\n`);
    return ok(formatting);
  }

  async #cp(args: readonly string[], stdin: () => Promise<string>): Promise<ShellResult> {
    const parsed = this.#operands("cp", args, "f");
    if ("exitCode" in parsed) return parsed;
    const [source, destination, ...rest] = parsed.operands;
    if (source === undefined || destination === undefined || rest.length > 0) {
      return fail(1, "cp: the simulated cp copies one file to one destination");
    }
    const content = await this.#readInput(source, stdin);
    if (content === null) {
      return fail(1, `cp: cannot stat '${source}': No such file or directory`);
    }
    const file = this.#path(destination);
    if (this.directories.has(file)) {
      this.files.set(posix.join(file, posix.basename(source)), content);
      return ok();
    }
    if (!this.#parentExists(file)) {
      return fail(1, `cp: cannot create regular file '${destination}': No such file or directory`);
    }
    this.files.set(file, content);
    return ok();
  }

  #rm(args: readonly string[]): ShellResult {
    const parsed = this.#operands("rm", args, "f");
    if ("exitCode" in parsed) return parsed;
    for (const operand of parsed.operands) {
      const file = this.#path(operand);
      if (this.files.delete(file)) continue;
      if (this.directories.has(file)) {
        return fail(1, `rm: cannot remove '${operand}': Is a directory`);
      }
      if (!parsed.flags.has("f")) {
        return fail(1, `rm: cannot remove '${operand}': No such file or directory`);
      }
    }
    return ok();
  }

  /** coreutils `test -e PATH` (and -f, -d): exit 0 when it holds, 1 when not, 2 on bad usage. */
  #test(args: readonly string[]): ShellResult {
    const [flag, path, ...extra] = args;
    if (path === undefined || extra.length > 0 || !["-e", "-f", "-d"].includes(flag ?? "")) {
      return fail(2, "test: the simulated host knows only `test -e|-f|-d PATH`");
    }
    const full = this.#path(path);
    const isFile = this.files.has(full);
    const isDirectory = this.directories.has(full);
    const holds = flag === "-f" ? isFile : flag === "-d" ? isDirectory : isFile || isDirectory;
    return { exitCode: holds ? 0 : 1, stdout: "", stderr: "" };
  }

  #cat(args: readonly string[]): ShellResult {
    const parsed = this.#operands("cat", args, "");
    if ("exitCode" in parsed) return parsed;
    let stdout = "";
    for (const operand of parsed.operands) {
      const file = this.#path(operand);
      if (this.directories.has(file)) return fail(1, `cat: ${operand}: Is a directory`);
      const content = this.files.get(file);
      if (content === undefined) return fail(1, `cat: ${operand}: No such file or directory`);
      stdout += content;
    }
    return ok(stdout);
  }

  #tail(args: readonly string[]): ShellResult {
    let count = 10;
    const operands: string[] = [];
    let options = true;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (options && arg === "--") options = false;
      else if (options && arg === "-n") {
        const value = args[++i] ?? "";
        if (!/^\d+$/.test(value)) return fail(1, `tail: invalid number of lines: '${value}'`);
        count = Number(value);
      } else if (options && arg.startsWith("-")) return fail(1, `tail: invalid option ${arg}`);
      else operands.push(arg);
    }
    const [operand] = operands;
    if (operand === undefined || operands.length > 1) {
      return fail(1, "tail: the simulated tail reads one file");
    }
    const content = this.files.get(this.#path(operand));
    if (content === undefined) {
      return fail(1, `tail: cannot open '${operand}' for reading: No such file or directory`);
    }
    const lines = content.split("\n");
    if (lines.at(-1) === "") lines.pop();
    const kept = count === 0 ? [] : lines.slice(-count);
    return ok(kept.length > 0 ? `${kept.join("\n")}\n` : "");
  }

  /** `/dev/stdin` is the command's input; any other path a file on the host. */
  async #readInput(path: string, stdin: () => Promise<string>): Promise<string | null> {
    if (path === "/dev/stdin" || path === "-") return stdin();
    return this.files.get(this.#path(path)) ?? null;
  }

  /**
   * `setsid -f sh -c <wrapper> <base> <command…>`: the installer launch. The wrapper sends the
   * command's output to `<base>.log` and its exit status to `<base>.status`; here the command
   * "runs" for installerMs and writes both.
   */
  #setsid(args: readonly string[]): ShellResult {
    const [fork, shell, dashC, script, base, ...command] = args;
    if (
      fork !== "-f" ||
      shell !== "sh" ||
      dashC !== "-c" ||
      script === undefined ||
      base === undefined ||
      command.length === 0
    ) {
      return fail(1, "setsid: the simulated host only starts `sh -c <script> <base> <command…>`");
    }
    const basePath = this.#path(base);
    this.detached.push({ base: basePath, argv: command, at: new Date() });
    // The redirection fails when the directory is missing: sh ends, nothing is written.
    if (!this.#parentExists(basePath)) return ok();
    const log = `${basePath}.log`;
    const [program, scriptPath, ...scriptArgs] = command;
    if (program === "bash" && scriptPath !== undefined && !this.files.has(this.#path(scriptPath))) {
      this.files.set(log, `bash: ${scriptPath}: No such file or directory\n`);
      this.files.set(`${basePath}.status`, "127\n");
      return ok();
    }
    const option = (name: string) => {
      const at = scriptArgs.indexOf(name);
      return at >= 0 ? (scriptArgs[at + 1] ?? null) : null;
    };
    const scenario = option("--scenario") ?? "the default scenario";
    const pod = option("--pod") ?? this.#options.name;
    this.files.set(log, `[deploy] deploying ${scenario} on ${pod}\n`);
    const runsMs =
      (this.#options.installerMs ?? 3000) + Math.random() * (this.#options.installerJitterMs ?? 0);
    this.#later(runsMs, () => {
      const fails = this.#options.installerFails === true;
      const lines = [
        "[deploy] master domain up, installing the installer",
        "[deploy] nodes discovered, deploying OpenStack",
        fails
          ? "ERROR: deployment failed: node1 did not answer during provisioning"
          : "[deploy] deployment finished successfully",
      ];
      this.files.set(log, `${this.files.get(log) ?? ""}${lines.join("\n")}\n`);
      this.files.set(`${basePath}.status`, fails ? "1\n" : "0\n");
      this.#options.onInstallerDone?.();
    });
    return ok();
  }

  // ---- virsh --------------------------------------------------------------------------------

  async #virsh(args: readonly string[], stdin: () => Promise<string>): Promise<ShellResult> {
    let rest = [...args];
    let uri: string | null = null;
    if (rest[0] === "-c" || rest[0] === "--connect") {
      uri = rest[1] ?? null;
      rest = rest.slice(2);
    }
    if (
      uri !== null &&
      !/^(qemu|test)(\+[a-z]+)?:\/\/[^\s]*\/(system|session|default)$/.test(uri)
    ) {
      return fail(
        1,
        "error: failed to connect to the hypervisor\n" +
          `error: no connection driver available for ${uri}`,
      );
    }
    const [command = "", ...options] = rest;
    const spec = VIRSH_COMMANDS[command];
    if (!spec) return fail(1, `error: unknown command: '${command}'`);
    const parsed = parseVirshOptions(command, spec, options);
    if ("exitCode" in parsed) return parsed;
    const target = parsed.value;
    switch (command) {
      case "net-define":
        return this.#netDefine(target, await this.#readInput(target, stdin));
      case "define":
        return this.#define(target, await this.#readInput(target, stdin));
      case "net-start":
      case "net-autostart":
      case "net-destroy":
      case "net-undefine":
        return this.#networkCommand(command, target, parsed.flags);
      default:
        return this.#domainCommand(command, target);
    }
  }

  #netDefine(source: string, xml: string | null): ShellResult {
    if (xml === null) {
      return fail(1, `error: Failed to read file '${source}' to define network`);
    }
    const name = xmlText(xml, "name");
    if (!name) {
      return fail(
        1,
        `error: Failed to define network from ${source}\nerror: XML error: missing network name`,
      );
    }
    const bridge = /<bridge\s[^>]*name=["']([^"']+)["']/.exec(xml)?.[1] ?? null;
    const clash = [...this.networks.values()].find(
      (other) => other.name !== name && bridge !== null && other.bridge === bridge,
    );
    if (clash) {
      return fail(
        1,
        `error: Failed to define network from ${source}\n` +
          `error: internal error: bridge name '${bridge}' already in use.`,
      );
    }
    const existing = this.networks.get(name);
    this.networks.set(name, {
      name,
      bridge,
      xml,
      active: existing?.active ?? false,
      autostart: existing?.autostart ?? false,
    });
    return ok(`Network ${name} defined from ${source}\n\n`);
  }

  #networkCommand(command: string, name: string, flags: Set<string>): ShellResult {
    const network = this.networks.get(name);
    if (!network) {
      return fail(
        1,
        `error: failed to get network '${name}'\n` +
          `error: Network not found: no network with matching name '${name}'`,
      );
    }
    switch (command) {
      case "net-start":
        if (network.active) {
          return fail(
            1,
            `error: Failed to start network ${name}\n` +
              `error: Requested operation is not valid: Network '${name}' is already running`,
          );
        }
        network.active = true;
        return ok(`Network ${name} started\n\n`);
      case "net-autostart":
        network.autostart = !flags.has("--disable");
        return ok(
          network.autostart
            ? `Network ${name} marked as autostarted\n\n`
            : `Network ${name} unmarked as autostarted\n\n`,
        );
      case "net-destroy":
        if (!network.active) {
          return fail(
            1,
            `error: Failed to destroy network ${name}\n` +
              `error: Requested operation is not valid: network '${name}' is not active`,
          );
        }
        network.active = false;
        return ok(`Network ${name} destroyed\n\n`);
      default:
        // An active network stays up as a transient one; the pod's teardown destroys it first.
        this.networks.delete(name);
        return ok(`Network ${name} has been undefined\n\n`);
    }
  }

  #define(source: string, xml: string | null): ShellResult {
    if (xml === null) {
      return fail(1, `error: Failed to read file '${source}' to define domain`);
    }
    const name = xmlText(xml, "name");
    if (!name) {
      return fail(
        1,
        `error: Failed to define domain from ${source}\nerror: XML error: missing domain name`,
      );
    }
    const taken = new Set(
      [...this.domains.values()].flatMap((domain) => domain.interfaces.map((i) => i.mac)),
    );
    const interfaces: SimInterface[] = [];
    for (const match of xml.matchAll(
      /<interface\s+type=["'](\w+)["'][^>]*>([\s\S]*?)<\/interface>/g,
    )) {
      const [, type = "", body = ""] = match;
      const source = /<source\s+(?:network|bridge)=["']([^"']*)["']/.exec(body)?.[1] ?? "";
      const model = /<model\s+type=["']([^"']*)["']/.exec(body)?.[1] ?? null;
      let mac = /<mac\s+address=["']([^"']*)["']/.exec(body)?.[1]?.toLowerCase();
      if (mac === undefined) {
        do mac = libvirtMac();
        while (taken.has(mac));
      }
      taken.add(mac);
      interfaces.push({ type, source, model, mac, device: null });
    }
    const disks = [...xml.matchAll(/<source\s+file=["']([^"']*)["']/g)].map((m) => m[1] ?? "");
    const running = this.domains.get(name)?.running ?? false;
    this.domains.set(name, { name, xml, interfaces, disks, running });
    return ok(`Domain '${name}' defined from ${source}\n\n`);
  }

  #domainCommand(command: string, name: string): ShellResult {
    const domain = this.domains.get(name);
    if (!domain) return fail(1, `error: failed to get domain '${name}'`);
    switch (command) {
      case "destroy":
        if (!domain.running) {
          return fail(
            1,
            `error: Failed to destroy domain '${name}'\n` +
              "error: Requested operation is not valid: domain is not running",
          );
        }
        this.#stopDomain(domain);
        return ok(`Domain '${name}' destroyed\n\n`);
      case "undefine":
        this.domains.delete(name);
        return ok(`Domain '${name}' has been undefined\n\n`);
      case "start":
        return this.#start(domain);
      default:
        return ok(domiflistTable(domain));
    }
  }

  #start(domain: SimDomain): ShellResult {
    const failed = (reason: string) =>
      fail(1, `error: Failed to start domain '${domain.name}'\nerror: ${reason}`);
    if (domain.running) return fail(1, "error: Domain is already active");
    for (const iface of domain.interfaces) {
      if (iface.type !== "network") continue;
      const network = this.networks.get(iface.source);
      if (!network) {
        return failed(`Network not found: no network with matching name '${iface.source}'`);
      }
      if (!network.active) {
        return failed(`Requested operation is not valid: network '${iface.source}' is not active`);
      }
    }
    for (const disk of domain.disks) {
      if (!this.files.has(disk)) {
        return failed(`Cannot access storage file '${disk}': No such file or directory`);
      }
    }
    domain.running = true;
    for (const iface of domain.interfaces) iface.device = `vnet${this.#nextVnet++}`;
    return ok(`Domain '${domain.name}' started\n\n`);
  }

  #stopDomain(domain: SimDomain): void {
    domain.running = false;
    for (const iface of domain.interfaces) iface.device = null;
  }
}

function authorizedKeysPath(account: SimAccount): string {
  return posix.join(account.home, ".ssh", "authorized_keys");
}

/** The lines of an authorized_keys file that sshd reads as keys. */
function keyLines(content: string): string[] {
  return content.split("\n").filter((line) => line.trim() !== "" && !/^[ \t]*#/.test(line));
}

interface VirshCommand {
  /** The option that names what the command acts on; a bare first argument fills it too. */
  target: "--domain" | "--network" | "--file";
  flags: string[];
}

const VIRSH_COMMANDS: Record<string, VirshCommand> = {
  destroy: { target: "--domain", flags: ["--graceful"] },
  undefine: {
    target: "--domain",
    flags: ["--managed-save", "--snapshots-metadata", "--checkpoints-metadata", "--nvram"],
  },
  start: { target: "--domain", flags: ["--paused", "--autodestroy"] },
  domiflist: { target: "--domain", flags: ["--inactive"] },
  define: { target: "--file", flags: ["--validate"] },
  "net-define": { target: "--file", flags: ["--validate"] },
  "net-start": { target: "--network", flags: [] },
  "net-autostart": { target: "--network", flags: ["--disable"] },
  "net-destroy": { target: "--network", flags: [] },
  "net-undefine": { target: "--network", flags: [] },
};

function parseVirshOptions(
  command: string,
  spec: VirshCommand,
  options: readonly string[],
): { value: string; flags: Set<string> } | ShellResult {
  let value: string | null = null;
  const flags = new Set<string>();
  for (let i = 0; i < options.length; i++) {
    const option = options[i]!;
    if (option === spec.target) {
      const given = options[++i];
      if (given === undefined) {
        return fail(1, `error: command '${command}' requires ${spec.target.slice(2)} option`);
      }
      value = given;
    } else if (spec.flags.includes(option)) {
      flags.add(option);
    } else if (option.startsWith("--")) {
      return fail(1, `error: command '${command}' doesn't support option ${option}`);
    } else if (value === null) {
      value = option;
    } else {
      return fail(1, `error: unexpected data '${option}'`);
    }
  }
  if (value === null) {
    return fail(1, `error: command '${command}' requires <${spec.target.slice(2)}> option`);
  }
  return { value, flags };
}

function xmlText(xml: string, element: string): string | null {
  const raw = new RegExp(`<${element}>([^<]*)</${element}>`).exec(xml)?.[1]?.trim();
  if (!raw) return null;
  return raw
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&amp;", "&");
}

/** libvirt's locally administered prefix for the MACs it picks. */
function libvirtMac(): string {
  const tail = [...randomBytes(3)].map((byte) => byte.toString(16).padStart(2, "0"));
  return ["52", "54", "00", ...tail].join(":");
}

/** `virsh domiflist` as virsh 9 prints it (vshTable: padded columns, a rule, a blank line). */
function domiflistTable(domain: SimDomain): string {
  const header = ["Interface", "Type", "Source", "Model", "MAC"];
  const rows = domain.interfaces.map((iface) => [
    iface.device ?? "-",
    iface.type,
    iface.source,
    iface.model ?? "-",
    iface.mac,
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)),
  );
  const line = (cells: string[]) =>
    ` ${cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join("   ")}`;
  const lines = [header, ...rows].map(line);
  const rule = "-".repeat(Math.max(...lines.map((l) => l.length)) + 2);
  return `${[lines[0], rule, ...lines.slice(1)].join("\n")}\n\n`;
}
