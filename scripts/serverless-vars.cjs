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
