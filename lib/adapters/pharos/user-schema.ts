/**
 * What a dashboard sends for a user (`GET api/users/<id or name>/`), as a zod schema. An extension:
 * the 2017 Pharos API had no user endpoint; later dashboards expose the user with the SSH public
 * key they gave it. Django renders blank fields as "", which here means "not given".
 */
import { z } from "zod";
import type { DashboardUser } from "../../ports/dashboard";

/** A text field Django may leave blank or (for fields added later) null or absent. */
const optionalText = z
  .string()
  .nullish()
  .transform((value) => {
    const text = value?.trim() ?? "";
    return text === "" ? null : text;
  });

export const userSchema = z
  .object({
    username: z.string().trim().min(1, "may not be blank"),
    // Django's User.email is blank when the user never gave one; null is accepted for
    // serializers that render a missing related value so.
    email: z.string().nullable(),
    first_name: optionalText,
    last_name: optionalText,
    ssh_public_key: optionalText,
  })
  .transform(
    (raw): DashboardUser => ({
      username: raw.username,
      fullName: [raw.first_name, raw.last_name].filter((part) => part !== null).join(" ") || null,
      email: raw.email?.trim() || null,
      sshPublicKey: raw.ssh_public_key,
    }),
  );

export type UserCheck = { ok: true; user: DashboardUser } | { ok: false; reason: string };

/**
 * Checks a user body. The reason names fields and what was wrong with them, never their values
 * (an e-mail address or key has no place in an error that reaches the logs).
 */
export function checkUser(raw: unknown): UserCheck {
  const result = userSchema.safeParse(raw);
  if (result.success) return { ok: true, user: result.data };
  const reason = result.error.issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ` : "") + issue.message)
    .join("; ");
  return { ok: false, reason };
}
