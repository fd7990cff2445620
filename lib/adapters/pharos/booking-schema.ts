/**
 * What the Pharos dashboard sends for bookings, as zod schemas. The dashboard is a Django REST
 * Framework app: a list endpoint answers a plain JSON list, or DRF's paginated envelope when a
 * deployment configures pagination. Single bookings are checked one by one so that one malformed
 * entry never hides the others.
 */
import { z } from "zod";

/**
 * A database id. DRF renders integers, but some serializers (and proxies that rewrite JSON) turn
 * them into strings; both mean the same row, so "7" and 7 are accepted and normalised to "7".
 */
const databaseId = z
  .union([z.int().nonnegative(), z.string().regex(/^\d+$/, "expected an integer")])
  .transform((value, ctx) => {
    const number = typeof value === "number" ? value : Number(value);
    if (!Number.isSafeInteger(number)) {
      ctx.addIssue({ code: "custom", message: "integer out of range" });
      return z.NEVER;
    }
    return String(number);
  });

/**
 * DRF's DateTimeField output: `Z`, `+00:00`/`-05:00` offsets and optional fractional seconds
 * depending on settings. A time without an offset is refused: its meaning would depend on the
 * dashboard server's time zone.
 */
const instant = z.iso
  .datetime({ offset: true, error: "expected an ISO-8601 time with a time zone" })
  .transform((value, ctx) => {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) {
      ctx.addIssue({ code: "custom", message: "not a valid time" });
      return z.NEVER;
    }
    return date;
  });

/** A user id (integer, as DRF renders a foreign key) or user name; null when not sent. */
const userReference = z
  .union([z.int().nonnegative(), z.string()], "expected a user id or name")
  .nullish()
  .transform((value) => {
    if (value == null) return null;
    const text = String(value).trim();
    return text === "" ? null : text;
  });

/** Optional choice fields (installer, scenario): null, missing or blank all mean "none chosen". */
const optionalChoice = z
  .string()
  .nullish()
  .transform((value) => (value == null || value.trim() === "" ? null : value));

export const bookingSchema = z
  .object({
    id: databaseId,
    resource_id: databaseId,
    start: instant,
    end: instant,
    installer_name: optionalChoice,
    scenario_name: optionalChoice,
    purpose: z
      .string()
      .nullish()
      .transform((value) => value ?? ""),
    // Extension (docs/dashboard.md): who booked, as the user's id or user name. The Pharos
    // serializer of 2017 leaves it out; dashboards that send it get hand-overs addressed to
    // the user.
    user: userReference,
  })
  .refine((booking) => booking.end.getTime() > booking.start.getTime(), {
    message: "end is not after start",
    path: ["end"],
    // Only once every field parsed: before that, start and end may still be raw strings.
    when: (payload) => payload.issues.length === 0,
  });

export type ParsedBooking = z.output<typeof bookingSchema>;

/** DRF's PageNumberPagination / LimitOffsetPagination envelope. */
const paginatedSchema = z.object({
  count: z.int().nonnegative().optional(),
  next: z.string().nullish(),
  previous: z.string().nullish(),
  results: z.array(z.unknown()),
});

/** One page of a list endpoint: entries stay unknown until each is checked on its own. */
export const listPageSchema = z.union([
  z.array(z.unknown()).transform((results) => ({ results, next: null, count: undefined })),
  paginatedSchema.transform(({ results, next, count }) => ({
    results,
    next: next ?? null,
    count,
  })),
]);

export type ListPage = z.output<typeof listPageSchema>;

export type BookingCheck =
  | { ok: true; booking: ParsedBooking }
  | { ok: false; id: string | null; reason: string };

/** Checks one raw entry; on failure says why in one line and, if it can, which booking it was. */
export function checkBooking(raw: unknown): BookingCheck {
  const result = bookingSchema.safeParse(raw);
  if (result.success) return { ok: true, booking: result.data };
  const reason = result.error.issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ` : "") + issue.message)
    .join("; ");
  return { ok: false, id: rawBookingId(raw)?.slice(0, 64) ?? null, reason };
}

/**
 * The entry's resource id when it has a well-formed one, so that bookings of other labs' resources
 * can be set aside before their other fields are judged: their defects are not this lab's concern.
 */
export function rawResourceId(raw: unknown): string | null {
  const field = fieldOf(raw, "resource_id");
  const result = databaseId.safeParse(field);
  return result.success ? result.data : null;
}

/** The entry's id as it was sent, whether or not the entry passes its check. */
export function rawBookingId(raw: unknown): string | null {
  const id = fieldOf(raw, "id");
  return typeof id === "number" || typeof id === "string" ? String(id) : null;
}

function fieldOf(raw: unknown, key: string): unknown {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  return (raw as Record<string, unknown>)[key];
}
