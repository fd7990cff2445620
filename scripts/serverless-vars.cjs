// Values serverless.yml derives from the lab's config, so the schedule follows conf/pharos.yaml.
// `polling` means what it meant in the original tool: polls per second (0.1 = every 10 s).
// EventBridge schedules cannot run more often than once a minute, so the cloud rate is clamped.
const { readFileSync } = require("node:fs");
const { resolve } = require("node:path");
const { parse } = require("yaml");

// yaml's messages quote the offending line, which may hold an inline token: only the position
// is shown (laas names the reason, with the same care, in lib/config/yaml-file.ts).
function readConfig(configPath) {
  try {
    return parse(readFileSync(configPath, "utf8")) ?? {};
  } catch (error) {
    const pos = error?.linePos?.[0];
    const where = pos ? `line ${pos.line}, column ${pos.col}: ` : "";
    throw new Error(
      `${configPath}: ${where}invalid YAML (\`laas status --config ${configPath}\` gives the reason)`,
    );
  }
}

function pollingOf(configPath) {
  const config = readConfig(configPath);
  const polling = config.polling ?? config.poling;
  if (typeof polling !== "number" || !(polling > 0)) {
    throw new Error(`${configPath}: polling: expected a positive number of polls per second`);
  }
  return polling;
}

module.exports.pollRate = () => {
  const configPath = resolve(__dirname, "..", process.env.LAAS_CONFIG ?? "conf/pharos.yaml");
  const minutes = Math.max(1, Math.round(1 / pollingOf(configPath) / 60));
  return minutes === 1 ? "rate(1 minute)" : `rate(${minutes} minutes)`;
};

module.exports.sweepRate = () => {
  const configPath = resolve(__dirname, "..", process.env.LAAS_CONFIG ?? "conf/pharos.yaml");
  const config = readConfig(configPath);
  const seconds = config.handover?.sweep_interval ?? 3600;
  if (typeof seconds !== "number" || !(seconds > 0)) {
    throw new Error(
      `${configPath}: handover.sweep_interval: expected a positive number of seconds`,
    );
  }
  const minutes = Math.max(1, Math.round(seconds / 60));
  return minutes === 1 ? "rate(1 minute)" : `rate(${minutes} minutes)`;
};

// The watcher looks every watch_interval seconds (default: the smallest fog.poll_interval of the
// installer configs, 15 s by default); EventBridge cannot go below a minute.
module.exports.watchRate = () => {
  const configPath = resolve(__dirname, "..", process.env.LAAS_CONFIG ?? "conf/pharos.yaml");
  const config = readConfig(configPath);
  const seconds = config.watch_interval ?? 15;
  if (typeof seconds !== "number" || !(seconds > 0)) {
    throw new Error(`${configPath}: watch_interval: expected a positive number of seconds`);
  }
  const minutes = Math.max(1, Math.round(seconds / 60));
  return minutes === 1 ? "rate(1 minute)" : `rate(${minutes} minutes)`;
};

// Secret store references (docs/configuration.md, "Secrets"): a secret field written
// `ssm:<parameter name>` or `secretsmanager:<secret name or ARN>` is fetched by the functions at
// run time, and they are granted exactly those: `secretStatements` gives the IAM statements for
// every reference in the deployment's config (LAAS_CONFIG, default conf/pharos.yaml) and in the
// files it names (its inventory; each installer config in default_configs, with its inventory and
// vpn_config). No reference, no statement: the functions then have no secret-store grant at all.
// What a reference is, is lib/config/secret-store.ts's rule, the loader's own (loaded here through
// tsx's scoped require, which registers nothing globally); the load itself is the full check,
// this only needs the names.

const { dirname } = require("node:path");
const { homedir } = require("node:os");

const SECRET_FIELDS = {
  pharos: ["token", "power.key", "relay.key", "handover.sealing_key", "handover.email.pass"],
  installer: ["fog.api_key", "fog.user_key"],
  vpn: ["authentication.pass"],
};

const { require: tsxRequire } = require("tsx/cjs/api");
const { secretStoreReference } = tsxRequire("../lib/config/secret-store.ts", __filename);

/** `{kind, name, text}` for a reference, `{problem}` for a malformed one, null for any other value. */
function parseReference(value) {
  return typeof value === "string" ? secretStoreReference(value) : null;
}

function fieldValue(data, field) {
  let value = data;
  for (const key of field.split(".")) {
    if (typeof value !== "object" || value === null) return undefined;
    value = value[key];
  }
  return value;
}

/** As lib/config/paths.ts: relative to the file's directory, `~/` the home directory. */
function pathFrom(file, value) {
  if (value === "~") return homedir();
  if (value.startsWith("~/")) return resolve(homedir(), value.slice(2));
  return resolve(dirname(file), value);
}

/** Every secret store reference of the config at `configPath` and the files it names. */
function referencesOf(configPath) {
  const found = [];
  const seen = new Set();
  const take = (file, data, field) => {
    const parsed = parseReference(fieldValue(data, field));
    if (parsed === null) return;
    if (parsed.problem) throw new Error(`${file}: ${field}: ${parsed.problem}`);
    found.push({ file, field, kind: parsed.kind, name: parsed.name, reference: parsed.text });
  };
  const named = (file, data, field) => {
    const value = fieldValue(data, field);
    if (typeof value !== "string") return null;
    const path = pathFrom(file, value);
    if (seen.has(path)) return null;
    seen.add(path);
    try {
      readFileSync(path);
    } catch (error) {
      throw new Error(`${file}: ${field}: cannot read ${path} (${error?.code ?? error})`);
    }
    return path;
  };
  const inventory = (file) => {
    const data = readConfig(file);
    for (const [resourceId, entry] of Object.entries(data)) {
      take(file, { [resourceId]: entry }, `${resourceId}.power.key`);
    }
  };
  const vpn = (file) => {
    const data = readConfig(file);
    // The seed's spelling `authenticaion` is accepted by the loader too.
    const aliased = data.authentication ? data : { ...data, authentication: data.authenticaion };
    for (const field of SECRET_FIELDS.vpn) take(file, aliased, field);
  };
  const installer = (file) => {
    const data = readConfig(file);
    for (const field of SECRET_FIELDS.installer) take(file, data, field);
    const inventoryFile = named(file, data, "inventory");
    if (inventoryFile) inventory(inventoryFile);
    const vpnFile = named(file, data, "vpn_config");
    if (vpnFile) vpn(vpnFile);
  };
  seen.add(configPath);
  const pharos = readConfig(configPath);
  for (const field of SECRET_FIELDS.pharos) take(configPath, pharos, field);
  const inventoryFile = named(configPath, pharos, "inventory");
  if (inventoryFile) inventory(inventoryFile);
  for (const key of Object.keys(pharos.default_configs ?? {})) {
    const file = named(configPath, pharos.default_configs, key);
    if (file) installer(file);
  }
  for (const entry of found) {
    entry.file = entry.file.startsWith(`${process.cwd()}/`)
      ? entry.file.slice(process.cwd().length + 1)
      : entry.file;
  }
  return found;
}

function deploymentConfig() {
  return resolve(__dirname, "..", process.env.LAAS_CONFIG ?? "conf/pharos.yaml");
}

const KMS_KEY_ARN = /^arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/;

/**
 * A customer managed KMS key (or several, comma-separated) the secrets are encrypted with: the
 * stage param `secretsKmsKey`, else LAAS_SECRETS_KMS_KEY. The AWS managed keys need no grant:
 * "The AWS managed key for Parameter Store (aws/ssm) grants Decrypt permission to all IAM
 * principals in the AWS account"
 * (https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-restrict-decryption.html), and
 * GetSecretValue needs kms:Decrypt only "if the secret is encrypted using a customer-managed key
 * instead of the Amazon Web Services managed key aws/secretsmanager" (GetSecretValue, "Required
 * permissions", https://docs.aws.amazon.com/sdkfornet/v3/apidocs/items/SecretsManager/MSecretsManagerGetSecretValueGetSecretValueRequest.html).
 */
async function kmsKeysOf(resolveVariable) {
  let param = "";
  if (typeof resolveVariable === "function") {
    param = (await resolveVariable("param:secretsKmsKey, ''")) ?? "";
  }
  const given = String(param || process.env.LAAS_SECRETS_KMS_KEY || "");
  const keys = given
    .split(",")
    .map((key) => key.trim())
    .filter((key) => key.length > 0);
  for (const key of keys) {
    if (!KMS_KEY_ARN.test(key)) {
      throw new Error(
        `secretsKmsKey / LAAS_SECRETS_KMS_KEY: ${JSON.stringify(key)} is no KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>); IAM grants kms:Decrypt on the key's ARN, not on an alias`,
      );
    }
  }
  return keys;
}

const SERVICE_HOSTS = { ssm: "ssm", secretsmanager: "secretsmanager" };

function statementsFor(references, kmsKeys) {
  const names = (kind) =>
    [...new Set(references.filter((r) => r.kind === kind).map((r) => r.name))].sort();
  const parameters = names("ssm");
  const secrets = names("secretsmanager");
  const statements = [];
  if (parameters.length > 0) {
    statements.push({
      Sid: "ReadSecretParameters",
      Effect: "Allow",
      Action: ["ssm:GetParameter"],
      Resource: parameters.map((name) => ({
        "Fn::Sub": `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/${name.replace(/^\//, "")}`,
      })),
    });
  }
  if (secrets.length > 0) {
    statements.push({
      Sid: "ReadSecrets",
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue"],
      // A secret's ARN ends in `-` and six random characters, which a name does not know.
      Resource: secrets.map((name) =>
        name.startsWith("arn:")
          ? name
          : {
              "Fn::Sub": `arn:\${AWS::Partition}:secretsmanager:\${AWS::Region}:\${AWS::AccountId}:secret:${name}-??????`,
            },
      ),
    });
  }
  if (statements.length > 0 && kmsKeys.length > 0) {
    const services = [
      ...(parameters.length > 0 ? [SERVICE_HOSTS.ssm] : []),
      ...(secrets.length > 0 ? [SERVICE_HOSTS.secretsmanager] : []),
    ];
    statements.push({
      Sid: "DecryptSecrets",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: kmsKeys,
      // Only as those services decrypt for the function, never a direct Decrypt call.
      Condition: {
        StringEquals: {
          "kms:ViaService": services.map((service) => ({
            "Fn::Sub": `${service}.\${AWS::Region}.amazonaws.com`,
          })),
        },
      },
    });
  }
  return statements;
}

/** The references of the deployment's config: `{file, field, kind, name, reference}` each. */
module.exports.secretReferences = () => referencesOf(deploymentConfig());

/** IAM statements granting exactly the references (an empty list when there are none). */
module.exports.secretStatements = async ({ resolveVariable } = {}) =>
  statementsFor(referencesOf(deploymentConfig()), await kmsKeysOf(resolveVariable));
