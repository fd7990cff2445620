import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import {
  InvalidCommandError,
  quoteShellArg,
  quoteShellCommand,
} from "../lib/adapters/ssh/shell-quote";

const run = promisify(execFile);

/** Arguments a shell would act on if they were pasted into a command line unquoted. */
const HOSTILE = [
  "",
  " ",
  "a b",
  "'",
  "''",
  "it's",
  '"',
  "\\",
  "\\'",
  "'\\''",
  "$(touch /tmp/laas-quote-pwned)",
  "`touch /tmp/laas-quote-pwned`",
  "; touch /tmp/laas-quote-pwned",
  "a\nb",
  "\n",
  "\t",
  "\r\n",
  "$HOME",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, on purpose
  "${HOME}",
  "~",
  "~root",
  "*",
  "?",
  "[a-z]",
  "{a,b}",
  "!",
  "#not a comment",
  "a|b&c>d<e",
  "--help",
  "-n",
  '<xml attr="&amp;">',
  "é ✓ 日本",
];

describe("quoteShellArg", () => {
  it("single-quotes every argument, even plain words", () => {
    expect(quoteShellArg("printf")).toBe("'printf'");
    expect(quoteShellArg("")).toBe("''");
    expect(quoteShellArg("a b")).toBe("'a b'");
  });

  it("writes a single quote as close, escaped quote, reopen", () => {
    expect(quoteShellArg("it's")).toBe("'it'\\''s'");
    expect(quoteShellArg("'")).toBe("''\\'''");
    expect(quoteShellArg("''")).toBe("''\\'''\\'''");
  });

  it("leaves every other character as it is: inside single quotes none has a meaning", () => {
    for (const value of ["$(x)", "`x`", "a\nb", "\\", '"', "~", "*", "$HOME"]) {
      expect(quoteShellArg(value)).toBe(`'${value}'`);
    }
  });

  it("refuses a NUL byte, without echoing the value", () => {
    expect(() => quoteShellArg("secret\0rest")).toThrow(InvalidCommandError);
    expect(() => quoteShellArg("secret\0rest")).toThrow(/NUL byte \(at character 6\)/);
    expect(() => quoteShellArg("secret\0rest")).not.toThrow(/secret/);
    expect(() => quoteShellCommand(["echo", "a\0"])).toThrow(InvalidCommandError);
  });
});

describe("quoteShellCommand", () => {
  it("quotes each element and joins them with spaces", () => {
    expect(quoteShellCommand(["printf", "%s\\n", "it's"])).toBe("'printf' '%s\\n' 'it'\\''s'");
  });

  it("refuses an empty argv", () => {
    expect(() => quoteShellCommand([])).toThrow(InvalidCommandError);
  });

  // What sshd does with an exec request: `$SHELL -c "<command line>"`. Each shell must split the
  // line back into exactly the argv, byte for byte.
  const shells = ["/bin/sh", "/bin/bash", "/bin/dash"].filter((shell) => existsSync(shell));

  it.each(shells)("%s splits the quoted line back into the same argv", async (shell) => {
    const line = quoteShellCommand(["printf", "%s\\0", ...HOSTILE]);
    const { stdout } = await run(shell, ["-c", line], { encoding: "utf8" });
    expect(stdout.split("\0").slice(0, -1)).toEqual(HOSTILE);
    expect(existsSync("/tmp/laas-quote-pwned")).toBe(false);
  });

  it.each(shells)("%s round-trips random strings of every non-NUL character", async (shell) => {
    const values = Array.from({ length: 50 }, (_, index) => randomString(index));
    const line = quoteShellCommand(["printf", "%s\\0", ...values]);
    const { stdout } = await run(shell, ["-c", line], { encoding: "utf8" });
    expect(stdout.split("\0").slice(0, -1)).toEqual(values);
  });
});

/** Mostly ASCII 1–127 (all the shell's special characters), some multi-byte characters. */
function randomString(seed: number): string {
  let state = seed * 7919 + 17;
  const next = (): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state;
  };
  const length = next() % 40;
  let text = "";
  for (let i = 0; i < length; i++) {
    const pick = next() % 10;
    text +=
      pick < 9
        ? String.fromCharCode(1 + (next() % 127))
        : String.fromCodePoint(0xa0 + (next() % 0x3000));
  }
  return text;
}
