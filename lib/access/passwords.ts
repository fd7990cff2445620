/**
 * Fresh random passwords (a booking's root password, a VPN user's password): read from an email
 * and typed by a person, so no characters that look alike (0/O/o, 1/l/I); put into URLs, config
 * files and forms, so the only symbols are the four that no URL or form encoding ever changes
 * (RFC 3986 "unreserved": - . _ ~). Every class is present, so host password policies that ask
 * for "upper, lower, digit, symbol" accept them.
 */
import { randomInt } from "node:crypto";
import { Secret } from "../secret";

const UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER = "abcdefghijkmnpqrstuvwxyz";
const DIGITS = "23456789";
const SYMBOLS = "-._~";

/** The character classes a generated password always holds, at least one of each. */
export const PASSWORD_CLASSES: readonly string[] = [UPPER, LOWER, DIGITS, SYMBOLS];
export const PASSWORD_ALPHABET = PASSWORD_CLASSES.join("");
const ALPHANUMERIC = UPPER + LOWER + DIGITS;

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 256;

/**
 * A password of `length` characters (~5.9 bits each: 20 characters are ~118 bits), from
 * node:crypto's CSPRNG. It starts and ends with a letter or digit: a leading "-" or "~" means
 * something to programs and shells, and a trailing "." is lost when the password ends a sentence.
 * Drawn again until every class is present, so each acceptable password is equally likely.
 */
export function generatePassword(length = 20): Secret {
  if (!Number.isInteger(length) || length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    throw new RangeError(
      `a password length must be a whole number from ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH}`,
    );
  }
  for (;;) {
    const characters = [pick(ALPHANUMERIC)];
    for (let i = 2; i < length; i++) characters.push(pick(PASSWORD_ALPHABET));
    characters.push(pick(ALPHANUMERIC));
    const password = characters.join("");
    if (hasEveryClass(password)) return new Secret(password, "generated");
  }
}

/** Whether `password` holds at least one character of each class. */
export function hasEveryClass(password: string): boolean {
  return PASSWORD_CLASSES.every((chars) => [...password].some((c) => chars.includes(c)));
}

function pick(chars: string): string {
  return chars[randomInt(chars.length)]!;
}
