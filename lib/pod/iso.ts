/**
 * Fetching an installer ISO whose SHA-256 the domain file gives (`iso.sha256`): one fixed script
 * on the pod host, so that checking, fetching, checking again and removing a bad file happen
 * together there. Location, URL and digest are the script's arguments ($1 $2 $3), never part of
 * it: no value from the config is read by a shell as code.
 *
 * - An ISO already at its location (kept on the host's image, or left by an earlier attempt) is
 *   used when its digest is the one expected; otherwise it is fetched again.
 * - A fetched ISO whose digest is not the expected one is removed, so the next attempt fetches
 *   it again rather than finding a bad file in place, and the script fails (status 4) saying
 *   which ISO, from where, and both digests.
 *
 * The digest is read with `sha256sum <file` (the file on standard input), so the output is
 * `<digest>  -` whatever the path holds: sha256sum escapes names with a backslash or newline.
 * It prints `present` or `fetched`; curl's own failures end it with curl's status.
 */
import type { RemoteCommand } from "../ports/relay";

/** The digest as the schema keeps it and sha256sum prints it. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Status of the script when the fetched ISO is not the one expected. */
export const ISO_MISMATCH_STATUS = 4;

export const ISO_FETCH_SCRIPT = `[ "$#" -eq 3 ] || { echo 'usage: sh -c SCRIPT sh LOCATION URL SHA256' >&2; exit 2; }
location=$1 url=$2 expected=$3
sha256() {
  sum=$(sha256sum <"$location") || exit 1
  actual=\${sum%% *}
}
if [ -f "$location" ]; then
  sha256
  if [ "$actual" = "$expected" ]; then echo present; exit 0; fi
  printf '%s\\n' "ISO $location is there with sha256 $actual, not $expected: fetched again" >&2
fi
curl -fsSL --retry 3 -o "$location" --url "$url" || exit
sha256
if [ "$actual" = "$expected" ]; then echo fetched; exit 0; fi
rm -f -- "$location" || exit 1
printf '%s\\n' "ISO $location from $url: its sha256 is $actual, expected $expected; the file is removed" >&2
exit ${ISO_MISMATCH_STATUS}`;

/** What fetches and checks one ISO (`display` shows it in logs and errors instead). */
export function isoFetchCommand(
  location: string,
  url: string,
  sha256: string,
  timeoutSeconds: number,
): RemoteCommand {
  return {
    argv: ["sh", "-c", ISO_FETCH_SCRIPT, "sh", location, url, sha256],
    timeoutSeconds,
    display: `fetch ISO ${url} to ${location} (sha256 ${sha256})`,
  };
}
