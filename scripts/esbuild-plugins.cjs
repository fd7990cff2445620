// esbuild plugins for the functions' bundles (serverless.yml, custom.esbuild.plugins), given the
// serverless instance: what they do depends on the command.
//
// `serverless invoke local` may run a function with LAAS_MODE=embedded, against the embedded
// store and the local engine (functions/embedded-runtime.ts). Every other build (package,
// deploy) is for Lambda, where that mode has no use: there functions/embedded-runtime.cloud.ts
// stands in for it, so that the local engine, the embedded store and the step handlers bound to
// them are not in the cloud packages at all.
const { dirname, join, sep } = require("node:path");

const EMBEDDED = /^\.\/embedded-runtime$/;
const IMPORTER = join("functions", "cloud-runtime.ts");

const cloudOnly = {
  name: "laas-cloud-only",
  setup(build) {
    build.onResolve({ filter: EMBEDDED }, (args) =>
      args.importer.endsWith(`${sep}${IMPORTER}`)
        ? { path: join(dirname(args.importer), "embedded-runtime.cloud.ts") }
        : undefined,
    );
  },
};

/** Whether the command builds for `serverless invoke local`. */
function isInvokeLocal(serverless) {
  const [command, subcommand] = serverless.processedInput?.commands ?? [];
  return command === "invoke" && subcommand === "local";
}

module.exports = (serverless) => (isInvokeLocal(serverless) ? [] : [cloudOnly]);
module.exports.cloudOnly = cloudOnly;
