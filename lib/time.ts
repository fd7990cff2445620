/** Waiting for something, but not for ever. */

/**
 * Resolves once `work` has settled (fulfilled or rejected) or `ms` have passed, whichever comes
 * first: true when it settled. `work` is not stopped; its outcome is simply not waited for.
 */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

const zonedFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * `at` in this machine's time zone (or `timeZone`), with the zone named as `laas status` names it:
 * `23:41:10 UTC`, with `date` `2026-06-01 23:41:10.123 CEST` (milliseconds too).
 */
export function zonedTime(at: Date, options: { date?: boolean; timeZone?: string } = {}): string {
  const key = `${options.date === true}|${options.timeZone ?? ""}`;
  let format = zonedFormats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat("en-GB", {
      timeZone: options.timeZone,
      ...(options.date ? { year: "numeric", month: "2-digit", day: "2-digit" } : {}),
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      ...(options.date ? { fractionalSecondDigits: 3 } : {}),
      hourCycle: "h23",
      timeZoneName: "short",
    });
    zonedFormats.set(key, format);
  }
  const part = Object.fromEntries(format.formatToParts(at).map((p) => [p.type, p.value]));
  const time = `${part.hour}:${part.minute}:${part.second}`;
  if (!options.date) return `${time} ${part.timeZoneName}`;
  return `${part.year}-${part.month}-${part.day} ${time}.${part.fractionalSecond} ${part.timeZoneName}`;
}
