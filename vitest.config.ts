import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup/polyfills.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // The tests load the shipped conf/ and its example secrets, which LaaS refuses elsewhere
    // (lib/config/examples.ts); processes the tests start inherit it.
    env: { LAAS_ALLOW_EXAMPLE_SECRETS: "1" },
  },
});
