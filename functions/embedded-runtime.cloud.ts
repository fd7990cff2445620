/**
 * What the cloud packages have in place of embedded-runtime.ts (scripts/esbuild-plugins.cjs): the
 * embedded store and the local engine are for `serverless invoke local`, not for Lambda.
 */
import type { EmbeddedInvocation } from "./embedded-runtime";

export async function openEmbeddedInvocation(_configPath: string): Promise<EmbeddedInvocation> {
  throw new Error(
    "LAAS_MODE=embedded is for `serverless invoke local`: this package was built for the cloud, " +
      "without the embedded store and engine",
  );
}
