/**
 * The credentials a booking's user gets on a lab host: a password for an account (root, as
 * handed over) and their SSH key in its authorized_keys. Both run as fixed scripts through a host
 * session: what comes from outside (the account name, the password, the key) is an argument or
 * standard input, never part of a script, and the password is only ever on standard input.
 *
 * The relay adapter logs every output line of a command (at debug) and puts the end of its stderr
 * in the error when it fails. chpasswd has no reason to print the password, but whatever wraps it
 * on a host (PAM modules) is not ours: the password script withholds any output line that
 * contains the password before it leaves the host.
 */
import { LaasError, ProtocolError } from "../errors";
import type { HostSession } from "../ports/relay";
import type { Secret } from "../secret";
import { parseSshPublicKey } from "./ssh-public-key";

/** An account name, password or key that is refused before anything runs on the host. */
export class InvalidCredentialError extends LaasError {
  override name = "InvalidCredential";
}

export interface HostCredentialOptions {
  /** The user the session is logged in as: anyone but root goes through `sudo -n`. */
  loginUser: string;
  timeoutSeconds: number;
}

/**
 * An account name as shadow's useradd accepts it by default, upper case and dots allowed: it
 * cannot be an option, nor a number (getent would look that up as a uid), nor hold ":" or a
 * newline (which would change the meaning of chpasswd's `account:password` line).
 */
const ACCOUNT_NAME = /^[A-Za-z_][A-Za-z0-9._-]{0,31}$/;
/** chpasswd reads lines of up to 1024 bytes (account, ":" and password included). */
const MAX_PASSWORD_BYTES = 512;

export function isValidAccountName(name: string): boolean {
  return ACCOUNT_NAME.test(name);
}

/**
 * Reads `account:password` from standard input and hands it to chpasswd. printf is a shell
 * builtin (dash, bash, busybox), so the line is never a process's argument. The exit status is
 * chpasswd's; its output goes to stderr with any line quoting the password withheld.
 */
export const SET_PASSWORD_SCRIPT = `IFS= read -r entry
case $entry in
  *:?*) ;;
  *) echo 'chpasswd: expected one account:password line on standard input' >&2; exit 2 ;;
esac
password=\${entry#*:}
output=$(printf '%s\\n' "$entry" | chpasswd 2>&1)
status=$?
if [ -n "$output" ]; then
  printf '%s\\n' "$output" | while IFS= read -r line; do
    case $line in
      *"$password"*) echo 'chpasswd: (an output line quoting the password was withheld)' ;;
      *) printf '%s\\n' "$line" ;;
    esac
  done >&2
fi
exit "$status"`;

/**
 * Adds the key line on standard input to the authorized_keys of the account named by $1, unless
 * a line with the same type and key data is there already (a commented-out one does not count).
 * Runs as root: the home directory comes from getent, ~/.ssh and the file are made (0700, 0600)
 * and handed to the account's uid and gid, and a symbolic link in place of either is refused
 * rather than followed (chmod and the append would act on its target: /etc/shadow, say).
 * Prints "added" or "present"; fails with status 3 and a message on stderr.
 */
export const AUTHORIZED_KEY_SCRIPT = `fail() { printf '%s\\n' "$*" >&2; exit 3; }
[ "$#" -eq 1 ] || fail 'usage: sh -c SCRIPT sh ACCOUNT < KEY-LINE'
account=$1
IFS= read -r key
type=\${key%% *}
rest=\${key#* }
blob=\${rest%% *}
case $type in ''|*[!A-Za-z0-9@.-]*) fail 'the key line does not start with a key type' ;; esac
case $blob in ''|*[!A-Za-z0-9+/=]*) fail 'the key line has no base64 key data' ;; esac
entry=$(getent passwd "$account") || fail "no account $account on this host"
IFS=:
set -f
set -- $entry
unset IFS
[ "$1" = "$account" ] || fail "getent passwd $account answered for another account"
uid=$3 gid=$4 home=$6
case $home in /?*) ;; *) fail "the home directory of $account is not an absolute path" ;; esac
[ -d "$home" ] || fail "the home directory $home of $account does not exist"
dir=$home/.ssh
file=$dir/authorized_keys
if [ -L "$dir" ]; then fail "$dir is a symbolic link: not followed"; fi
if [ -L "$file" ]; then fail "$file is a symbolic link: not followed"; fi
mkdir -p "$dir" || exit 1
chown -h "$uid:$gid" "$dir" && chmod 700 "$dir" || exit 1
(umask 077 && : >>"$file") || exit 1
chown -h "$uid:$gid" "$file" && chmod 600 "$file" || exit 1
if command -v restorecon >/dev/null 2>&1; then restorecon -R "$dir" >&2 || :; fi
if awk -v type="$type" -v blob="$blob" '
  /^[ \\t]*#/ { next }
  { for (i = 1; i < NF; i++) if ($i == type && $(i + 1) == blob) found = 1 }
  END { exit !found }' "$file"; then
  echo present
  exit 0
fi
if [ -s "$file" ] && [ -n "$(tail -c 1 "$file")" ]; then echo >>"$file" || exit 1; fi
printf '%s\\n' "$key" >>"$file" || exit 1
echo added`;

/** Root runs a command as it is; anyone else through sudo, which must not prompt. */
function privileged(loginUser: string, argv: string[]): string[] {
  return loginUser === "root" ? argv : ["sudo", "-n", ...argv];
}

/** What setPassword runs (its standard input: `account:password\n`). */
export function setPasswordArgv(loginUser: string): string[] {
  return privileged(loginUser, ["sh", "-c", SET_PASSWORD_SCRIPT, "sh"]);
}

/** What installAuthorizedKey runs (its standard input: the key line and a newline). */
export function authorizedKeyArgv(loginUser: string, account: string): string[] {
  return privileged(loginUser, ["sh", "-c", AUTHORIZED_KEY_SCRIPT, "sh", account]);
}

function requireAccount(account: string): void {
  if (!isValidAccountName(account)) {
    const shown = account.length > 64 ? `${account.slice(0, 64)}…` : account;
    throw new InvalidCredentialError(
      `${JSON.stringify(shown)} is not a valid account name ` +
        "(a letter or _, then up to 31 letters, digits, '.', '_' or '-')",
    );
  }
}

/** Sets the password of `account` with chpasswd; the password goes on standard input only. */
export async function setPassword(
  session: HostSession,
  account: string,
  password: Secret,
  opts: HostCredentialOptions,
): Promise<void> {
  requireAccount(account);
  const value = password.reveal();
  if (value.length === 0 || /[\r\n\0]/.test(value)) {
    throw new InvalidCredentialError(
      `the password for ${account} (${password.source}) is empty or holds a line break or NUL`,
    );
  }
  if (Buffer.byteLength(value, "utf8") > MAX_PASSWORD_BYTES) {
    throw new InvalidCredentialError(
      `the password for ${account} (${password.source}) is longer than ${MAX_PASSWORD_BYTES} bytes`,
    );
  }
  try {
    await session.run({
      argv: setPasswordArgv(opts.loginUser),
      stdin: `${account}:${value}\n`,
      display: `chpasswd (${account})`,
      timeoutSeconds: opts.timeoutSeconds,
      // The same password set again leaves the account as once.
      idempotent: true,
    });
  } catch (error) {
    throw withoutSecret(error, value);
  }
}

/**
 * Adds an SSH public key line (as parseSshPublicKey re-built it; it is checked again here) to the
 * account's authorized_keys. Idempotent: answers whether the key was added or already there.
 */
export async function installAuthorizedKey(
  session: HostSession,
  account: string,
  keyLine: string,
  opts: HostCredentialOptions,
): Promise<{ added: boolean }> {
  requireAccount(account);
  const key = parseSshPublicKey(keyLine);
  if (!key.ok) {
    throw new InvalidCredentialError(`the SSH key for ${account} is refused: ${key.reason}`);
  }
  const display = `install SSH key ${key.fingerprint} (${account})`;
  const result = await session.run({
    argv: authorizedKeyArgv(opts.loginUser, account),
    stdin: `${key.line}\n`,
    display,
    timeoutSeconds: opts.timeoutSeconds,
    // Adds the key only when missing: run again, it answers "present".
    idempotent: true,
  });
  const answer = result.stdout.trim();
  if (answer !== "added" && answer !== "present") {
    throw new ProtocolError(
      `\`${display}\` ended without saying whether the key was added (stdout: ` +
        `${JSON.stringify(answer.slice(0, 200))})`,
    );
  }
  return { added: answer === "added" };
}

/**
 * Second net under the script's own scrubbing: an error (built by the adapter from the command's
 * stderr) never carries the password on.
 */
function withoutSecret(error: unknown, secret: string): unknown {
  if (!(error instanceof Error)) return error;
  // In place, so the error keeps its class (a TransientError is retried, a CommandFailed not).
  error.message = error.message.replaceAll(secret, "[secret]");
  if (error.stack) error.stack = error.stack.replaceAll(secret, "[secret]");
  return error;
}

/**
 * A host name as systemd's hostnamectl takes it and DNS can carry: labels of letters, digits and
 * inner hyphens, 63 characters each, 253 in all.
 */
export function isValidHostname(name: string): boolean {
  return (
    name.length <= 253 &&
    name.split(".").every((label) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label))
  );
}

/** What setHostname runs. */
export function setHostnameArgv(loginUser: string, name: string): string[] {
  return privileged(loginUser, ["hostnamectl", "set-hostname", name]);
}

/** Sets the host's static host name (a job's hardware task asks for one). Idempotent. */
export async function setHostname(
  session: HostSession,
  name: string,
  opts: HostCredentialOptions,
): Promise<void> {
  if (!isValidHostname(name)) {
    throw new InvalidCredentialError(
      `the host name ${JSON.stringify(name.slice(0, 64))} is not one`,
    );
  }
  await session.run({
    argv: setHostnameArgv(opts.loginUser, name),
    display: `hostnamectl set-hostname ${name}`,
    timeoutSeconds: opts.timeoutSeconds,
    idempotent: true,
  });
}
