/**
 * Fetching the secrets a config names by reference (lib/config/secret-store.ts decides what a
 * reference is): SSM parameters decrypted, Secrets Manager secrets' SecretString, through
 * Powertools' providers. Loaded only when a config holds a reference.
 *
 * The clients are made here, once per process, with nothing but the SDK's own resolution: the
 * region from AWS_REGION (or the profile), the endpoint from AWS_ENDPOINT_URL_SSM /
 * AWS_ENDPOINT_URL_SECRETS_MANAGER, else AWS_ENDPOINT_URL (the SDK reads those itself, per
 * service id), credentials from the usual chain. The SDK retries throttling and network errors
 * (three attempts, backing off) before an error reaches this module.
 *
 * Fetched values are cached (Powertools' cache) for CACHE_SECONDS, or POWERTOOLS_PARAMETERS_MAX_AGE
 * when set: a warm Lambda builds its runtime, and so loads its config, once; a second load
 * within that time (the CLI loads pharos.yaml and an installer config; a runtime rebuilt after a
 * failed start) asks the store nothing. After it, a load fetches again, and sees a rotated value.
 */

import { SecretsProvider } from "@aws-lambda-powertools/parameters/secrets";
import { SSMProvider } from "@aws-lambda-powertools/parameters/ssm";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SSMClient } from "@aws-sdk/client-ssm";
import type {
  FetchOutcome,
  SecretStoreAdapter,
  SecretStoreReference,
} from "../../config/secret-store";
import { isNetworkErrorCode } from "../network-errors";

/** How long a fetched value serves further config loads in this process. */
export const CACHE_SECONDS = 300;

interface Providers {
  ssm: SSMProvider;
  ssmClient: SSMClient;
  secrets: SecretsProvider;
  secretsClient: SecretsManagerClient;
}

let providers: Providers | null = null;
/** One request per reference at a time: concurrent loads share it. */
const inFlight = new Map<string, Promise<FetchOutcome>>();

function currentProviders(): Providers {
  if (!providers) {
    const ssmClient = new SSMClient({});
    const secretsClient = new SecretsManagerClient({});
    providers = {
      ssmClient,
      ssm: new SSMProvider({ awsSdkV3Client: ssmClient }),
      secretsClient,
      secrets: new SecretsProvider({ awsSdkV3Client: secretsClient }),
    };
  }
  return providers;
}

function maxAge(): number | undefined {
  // Left to Powertools when its own variable is set, so that it keeps its documented meaning.
  return process.env.POWERTOOLS_PARAMETERS_MAX_AGE === undefined ? CACHE_SECONDS : undefined;
}

const NOT_FOUND = new Set([
  "ParameterNotFound",
  "ParameterVersionNotFound",
  "ResourceNotFoundException",
]);
const DENIED = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnrecognizedClientException",
  "InvalidKeyId",
  "DecryptionFailure",
  "KMSAccessDeniedException",
]);
const THROTTLED = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyUpdates",
  "RequestLimitExceeded",
  "TooManyRequestsException",
]);

/** The SDK's error under Powertools' GetParameterError. */
function sdkError(error: unknown): Error | null {
  let current: unknown = error;
  while (current instanceof Error && current.name === "GetParameterError" && current.cause) {
    current = current.cause;
  }
  return current instanceof Error ? current : null;
}

function httpStatusOf(error: Error): number | undefined {
  const metadata: unknown = Reflect.get(error, "$metadata");
  if (typeof metadata !== "object" || metadata === null) return undefined;
  const status: unknown = Reflect.get(metadata, "httpStatusCode");
  return typeof status === "number" ? status : undefined;
}

function codeOf(error: Error): string | undefined {
  const code: unknown = Reflect.get(error, "code");
  return typeof code === "string" ? code : undefined;
}

function endpointOf(reference: SecretStoreReference): string | undefined {
  const own =
    reference.kind === "ssm"
      ? process.env.AWS_ENDPOINT_URL_SSM
      : process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
  return own || process.env.AWS_ENDPOINT_URL || undefined;
}

async function regionOf(reference: SecretStoreReference): Promise<string> {
  const { ssmClient, secretsClient } = currentProviders();
  const client = reference.kind === "ssm" ? ssmClient : secretsClient;
  try {
    return await client.config.region();
  } catch {
    return "(no region)";
  }
}

function grantFor(reference: SecretStoreReference): string {
  return reference.kind === "ssm" ? "ssm:GetParameter" : "secretsmanager:GetSecretValue";
}

function createCommand(reference: SecretStoreReference): string {
  return reference.kind === "ssm"
    ? `aws ssm put-parameter --type SecureString --name ${reference.name} --value …`
    : `aws secretsmanager create-secret --name ${reference.name} --secret-string …`;
}

/**
 * What a failed fetch means, in words that name no value: AWS's own message is not repeated
 * (it names the caller's role, and is not needed to act), only the error's name.
 */
async function classify(error: unknown, reference: SecretStoreReference): Promise<FetchOutcome> {
  const cause = sdkError(error);
  const name = cause?.name ?? "unknown error";
  const code = cause ? codeOf(cause) : undefined;
  const status = cause ? httpStatusOf(cause) : undefined;
  if (NOT_FOUND.has(name)) {
    const what = reference.kind === "ssm" ? "no such SSM parameter" : "no such secret";
    return {
      ok: false,
      transient: false,
      problem: `${what} in region ${await regionOf(reference)} (${name}): create it (${createCommand(reference)}), or set AWS_REGION to the region that holds it`,
    };
  }
  if (DENIED.has(name)) {
    return {
      ok: false,
      transient: false,
      problem: `access denied (${name}): the role needs ${grantFor(reference)} on it, and kms:Decrypt on its KMS key when that is a customer managed key (the deployed functions get both from scripts/serverless-vars.cjs secretStatements)`,
    };
  }
  if (name === "CredentialsProviderError") {
    return {
      ok: false,
      transient: false,
      problem:
        "no AWS credentials (CredentialsProviderError): set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    };
  }
  if (cause && /region is missing/i.test(cause.message)) {
    return {
      ok: false,
      transient: false,
      problem: "no AWS region: set AWS_REGION to the region that holds it",
    };
  }
  const network = isNetworkErrorCode(code);
  if (
    THROTTLED.has(name) ||
    network ||
    name === "TimeoutError" ||
    status === 429 ||
    (status !== undefined && status >= 500)
  ) {
    const endpoint = endpointOf(reference);
    const problem = network
      ? `the store could not be reached (${code}${endpoint ? ` at ${endpoint}` : ""})`
      : `the store did not serve the request (${name}${status === undefined ? "" : `, HTTP ${status}`})`;
    return {
      ok: false,
      transient: true,
      problem: `${problem}, through the SDK's retries: try again later`,
    };
  }
  return {
    ok: false,
    transient: false,
    problem: `the store refused the request (${name}${status === undefined ? "" : `, HTTP ${status}`})`,
  };
}

async function fetchOnce(reference: SecretStoreReference): Promise<FetchOutcome> {
  const { ssm, secrets } = currentProviders();
  let value: unknown;
  try {
    value =
      reference.kind === "ssm"
        ? await ssm.get(reference.name, { decrypt: true, maxAge: maxAge() })
        : await secrets.get(reference.name, { maxAge: maxAge() });
  } catch (error) {
    return classify(error, reference);
  }
  if (value instanceof Uint8Array) {
    return {
      ok: false,
      transient: false,
      problem: "holds a binary secret (SecretBinary): store the value as text (--secret-string)",
    };
  }
  // As with secret files, trailing whitespace (the newline of a key file put as the value) goes.
  const text = typeof value === "string" ? value.trimEnd() : "";
  if (text.length === 0) return { ok: false, transient: false, problem: "is empty" };
  return { ok: true, value: text };
}

export const awsSecretStore: SecretStoreAdapter = {
  fetch(reference) {
    const key = reference.text;
    let pending = inFlight.get(key);
    if (!pending) {
      pending = fetchOnce(reference).finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return pending;
  },
  forget() {
    providers?.ssmClient.destroy();
    providers?.secretsClient.destroy();
    providers = null;
    inFlight.clear();
  },
};
