/**
 * The two LDAP extensions this adapter uses beyond RFC 4511, BER-encoded with ldapts's own
 * BerWriter:
 *
 * - Password Modify (RFC 3062), an extended operation: the server itself hashes the new password
 *   with its configured scheme (slapd's `password-hash`), so LaaS never picks or computes one.
 * - The assertion control (RFC 4528): the operation it rides on is done only if the entry still
 *   matches a filter, checked by the server in the same operation. A delete that asserts the
 *   recorded entryUUID cannot remove an entry that took the old one's place meanwhile.
 */
import { BerWriter, Control, type Filter } from "ldapts";
import type { Secret } from "../../secret";

export const PASSWORD_MODIFY_OID = "1.3.6.1.4.1.4203.1.11.1";
export const ASSERTION_CONTROL_OID = "1.3.6.1.1.12";
/** The result code of an operation whose assertion the entry did not match (RFC 4528). */
export const ASSERTION_FAILED = 122;

/** Context-specific, primitive tags of PasswdModifyRequestValue's fields. */
const USER_IDENTITY_TAG = 0x80;
const NEW_PASSWD_TAG = 0x82;
/** LDAP's OCTET STRING, which a control's value is. */
const OCTET_STRING = 0x04;

/**
 * The request value of Password Modify for an administrator setting `userIdentity`'s password:
 *
 *   PasswdModifyRequestValue ::= SEQUENCE {
 *     userIdentity [0] OCTET STRING OPTIONAL,
 *     oldPasswd    [1] OCTET STRING OPTIONAL,   -- left out: not needed by an administrator
 *     newPasswd    [2] OCTET STRING OPTIONAL }
 *
 * The buffer holds the password in clear: it is sent (over TLS) and dropped, never logged.
 */
export function passwordModifyRequest(userIdentity: string, newPassword: Secret): Buffer {
  const writer = new BerWriter();
  writer.startSequence();
  writer.writeString(userIdentity, USER_IDENTITY_TAG);
  writer.writeString(newPassword.reveal(), NEW_PASSWD_TAG);
  writer.endSequence();
  return writer.buffer;
}

/** Assertion control (critical: a server that cannot check it must refuse the operation). */
export class AssertionControl extends Control {
  readonly #filter: Filter;

  constructor(filter: Filter) {
    super(ASSERTION_CONTROL_OID, { critical: true });
    this.#filter = filter;
  }

  protected override writeControl(writer: BerWriter): void {
    const value = new BerWriter();
    this.#filter.write(value);
    writer.writeBuffer(value.buffer, OCTET_STRING);
  }
}
