/**
 * Who may see the page: anyone on loopback when no token is set; otherwise whoever shows the
 * token, as `Authorization: Bearer <token>` (Prometheus, scripts), the `laas_token` cookie the
 * page sets, or `?token=` once on the page's address (a browser's first visit), which is then
 * swapped for the cookie so the token does not stay in the address bar or the history.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { Secret } from "../secret";

export const TOKEN_COOKIE = "laas_token";

export interface Credentials {
  authorization?: string | undefined;
  cookie?: string | undefined;
  queryToken?: string | null | undefined;
}

/** Whether the request shows the token (any of the three ways). */
export function showsToken(token: Secret, given: Credentials): boolean {
  const offered = [
    bearer(given.authorization),
    cookieValue(given.cookie, TOKEN_COOKIE),
    given.queryToken ?? null,
  ];
  return offered.some((value) => value !== null && sameSecret(value, token.reveal()));
}

/** Compared as digests, so neither the length nor the first differing character shows. */
function sameSecret(offered: string, expected: string): boolean {
  const a = createHash("sha256").update(offered).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

function bearer(header: string | undefined): string | null {
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1] ?? null;
}

export function cookieValue(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) {
      try {
        return decodeURIComponent(rest.join("="));
      } catch {
        return null;
      }
    }
  }
  return null;
}

/** 127.0.0.0/8, ::1 and `localhost`: the addresses only this machine can reach. */
export function isLoopback(address: string): boolean {
  if (address === "localhost" || address === "::1") return true;
  if (isIP(address) === 4) return address.split(".")[0] === "127";
  return address.toLowerCase().startsWith("::ffff:127.");
}
