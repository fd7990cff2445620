// A local serverless plugin (listed first in serverless.yml, so that it runs before
// serverless-esbuild): every build starts from an empty build folder.
//
// serverless-esbuild bundles into .esbuild/ and zips every file it finds there, but never empties
// it first, and `serverless invoke local` leaves it behind. A package made after an invoke local,
// or after a change of serverless.yml's patterns, would ship what the earlier build left there:
// chunks of an older bundle, or files the patterns no longer take (conf/secrets/ once was).
const { rmSync } = require("node:fs");
const { join } = require("node:path");

class CleanBuildFolder {
  constructor(serverless) {
    const clean = () => {
      const workFolder = serverless.service.custom?.esbuild?.outputWorkFolder ?? ".esbuild";
      rmSync(join(serverless.serviceDir, workFolder), { recursive: true, force: true });
    };
    this.hooks = {
      "before:package:createDeploymentArtifacts": clean,
      "before:deploy:function:packageFunction": clean,
      "before:invoke:local:invoke": clean,
    };
  }
}

module.exports = CleanBuildFolder;
