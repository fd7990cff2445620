/**
 * What an LDAP failure means for LaaS: ldapts's result codes, Node's socket and TLS codes and
 * ldapts's own timer messages, each turned into the project's error class that says whether a
 * retry may help (TransientError), the configuration is wrong (ConfigError), the credentials are
 * refused (AuthError), or the directory said no (DirectoryError, with the LDAP result code).
 */
import { ResultCodeError } from "ldapts";
import {
  AuthError,
  ConfigError,
  errorMessage,
  LaasError,
  OutcomeUnknownError,
  TransientError,
} from "../../errors";
import { isNetworkErrorCode } from "../network-errors";

/** The directory answered an LDAP result code this adapter has no better class for. */
export class DirectoryError extends LaasError {
  override name = "DirectoryError";
  /** The LDAP result code (RFC 4511), or null when the failure was not an LDAP result. */
  readonly resultCode: number | null;

  constructor(message: string, resultCode: number | null = null) {
    super(message);
    this.resultCode = resultCode;
  }
}

/** A user name the directory must not be given (control characters, too long, empty). */
export class InvalidUserNameError extends LaasError {
  override name = "InvalidUserName";
}

/** RFC 4511 names of the result codes (and RFC 4528's assertionFailed), for messages. */
const RESULT_CODE_NAMES: Record<number, string> = {
  1: "operationsError",
  2: "protocolError",
  3: "timeLimitExceeded",
  4: "sizeLimitExceeded",
  7: "authMethodNotSupported",
  8: "strongerAuthRequired",
  11: "adminLimitExceeded",
  12: "unavailableCriticalExtension",
  13: "confidentialityRequired",
  14: "saslBindInProgress",
  16: "noSuchAttribute",
  17: "undefinedAttributeType",
  18: "inappropriateMatching",
  19: "constraintViolation",
  20: "attributeOrValueExists",
  21: "invalidAttributeSyntax",
  32: "noSuchObject",
  33: "aliasProblem",
  34: "invalidDNSyntax",
  35: "isLeaf",
  36: "aliasDereferencingProblem",
  48: "inappropriateAuthentication",
  49: "invalidCredentials",
  50: "insufficientAccessRights",
  51: "busy",
  52: "unavailable",
  53: "unwillingToPerform",
  54: "loopDetect",
  64: "namingViolation",
  65: "objectClassViolation",
  66: "notAllowedOnNonLeaf",
  67: "notAllowedOnRDN",
  68: "entryAlreadyExists",
  69: "objectClassModsProhibited",
  71: "affectsMultipleDSAs",
  80: "other",
  112: "tlsNotSupported",
  122: "assertionFailed",
};

/**
 * Result codes that say "not now" rather than "never": timeLimitExceeded, busy, unavailable,
 * and unwillingToPerform, which servers answer while shutting down or overloaded — except where
 * the server says it will never do it here (UNWILLING_FOR_GOOD).
 */
const TRANSIENT_RESULT_CODES = new Set([3, 51, 52, 53]);
const UNWILLING_TO_PERFORM = 53;

/**
 * slapd's unwillingToPerform texts that name a configuration, not a moment: a DN outside every
 * database it holds, or a replica (a shadow copy) asked to write.
 */
const UNWILLING_FOR_GOOD = /no global superior knowledge|shadow context/i;

/**
 * ldapts's message for a request whose answer never came (connection closed, socket error,
 * timer), naming the request: `… Message type: AddRequest (0x68)` or `AddRequest: Operation
 * timed out`.
 */
const LOST_REQUEST = /Message type: (\w+)|^(\w+Request): Operation timed out/;

/** Requests that change the directory: one whose answer was lost may have been carried out. */
const WRITE_REQUESTS = new Set([
  "AddRequest",
  "DeleteRequest",
  "ModifyRequest",
  "ModifyDNRequest",
  "ExtendedRequest",
]);

/** OpenSSL's and Node's codes for a server certificate that is not trusted for this name. */
const CERTIFICATE_CODE =
  /CERT|SELF_SIGNED|ISSUER|ALTNAME|HOSTNAME|VERIFY|INVALID_CA|PATH_LENGTH|INVALID_PURPOSE/;

/** ldapts's own messages for timers and lost sockets. */
const LDAPTS_CONNECTION_MESSAGE =
  /Connection timeout|Operation timed out|Socket error|Connection closed before|Socket connection not established/i;

function nodeErrorCode(error: unknown): string | null {
  if (typeof error !== "object" || error === null || !("code" in error)) return null;
  const { code } = error as { code: unknown };
  return typeof code === "string" ? code : null;
}

/** `name (code): detail` of an LDAP result. */
export function describeResult(error: ResultCodeError): string {
  const name = RESULT_CODE_NAMES[error.code] ?? "unknown result code";
  const detail = error.message.trim();
  return detail ? `${name} (${error.code}): ${detail}` : `${name} (${error.code})`;
}

/** The project's error for `error`, which happened during `at` ("LDAP add of … on ldaps://…"). */
export function classifyLdapError(error: unknown, at: string): LaasError {
  if (error instanceof LaasError) return error;
  if (error instanceof ResultCodeError) {
    const described = describeResult(error);
    if (error.code === 49 || error.code === 50) {
      return new AuthError(`${at} refused: ${described}`);
    }
    if (error.code === UNWILLING_TO_PERFORM && UNWILLING_FOR_GOOD.test(error.message)) {
      return new ConfigError(
        `${at} refused: ${described}; the server will not do this here (check ldap.url, and ` +
          "that directory.root names a database of this server that accepts writes)",
      );
    }
    if (TRANSIENT_RESULT_CODES.has(error.code)) return new TransientError(`${at}: ${described}`);
    return new DirectoryError(`${at} failed: ${described}`, error.code);
  }
  const code = nodeErrorCode(error);
  const message = errorMessage(error);
  if (code !== null && CERTIFICATE_CODE.test(code)) {
    return new ConfigError(
      `${at}: the server's certificate is not trusted (${code}: ${message}); ` +
        "check ldap.ca and the host name in ldap.url",
    );
  }
  if (code?.startsWith("ERR_SSL_") || code?.startsWith("ERR_TLS_")) {
    return new ConfigError(`${at}: TLS handshake failed (${code}: ${message})`);
  }
  if (isNetworkErrorCode(code) || LDAPTS_CONNECTION_MESSAGE.test(message)) {
    const lost = LOST_REQUEST.exec(message);
    const request = lost?.[1] ?? lost?.[2];
    if (request !== undefined && WRITE_REQUESTS.has(request)) {
      return new OutcomeUnknownError(
        `${at}: the connection was lost before the server answered, so it may have been done ` +
          `(${oneLine(message)})`,
      );
    }
    return new TransientError(`${at}: server unreachable or not answering (${oneLine(message)})`);
  }
  return new DirectoryError(`${at} failed: ${message}`);
}

/** ldapts puts the socket's own message on a second line. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, "; ").trim();
}
