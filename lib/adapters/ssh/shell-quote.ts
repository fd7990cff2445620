/**
 * Quoting for the remote POSIX shell. sshd hands an exec request to the login shell as one
 * string (`$SHELL -c "<command>"`), so an argv must be turned into a command line the shell
 * splits back into exactly those words. Every word is single-quoted, always: inside single
 * quotes a POSIX shell gives no character a meaning ($, `, \, ;, newlines, globs, ~ all stay
 * literal), and a single quote itself is written as '\'' (close, escaped quote, reopen).
 */
import { LaasError } from "../../errors";

/** A command argument cannot be passed to a remote shell at all (it holds a NUL byte). */
export class InvalidCommandError extends LaasError {
  override name = "InvalidCommand";
}

/** One argument as a single-quoted shell word: `it's` becomes `'it'\''s'`, "" becomes `''`. */
export function quoteShellArg(value: string): string {
  // C strings end at NUL: the shell would silently drop the rest of the argument.
  const nul = value.indexOf("\0");
  if (nul !== -1) {
    // The value itself is not shown: arguments may hold booking data.
    throw new InvalidCommandError(
      `a command argument contains a NUL byte (at character ${nul}), which no shell can pass on`,
    );
  }
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/** An argv as one command line for the remote shell; each element quoted on its own. */
export function quoteShellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new InvalidCommandError("a command needs at least a program name");
  return argv.map(quoteShellArg).join(" ");
}
