import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup/polyfills.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Two files at a time: most suites wait on processes they start (sshd, slapd, dynalite, the
    // `laas` command), so two share two cores well (about 10 minutes where one took 16).
    maxWorkers: 2,
    // The tests load the shipped conf/ and its example secrets, which LaaS refuses elsewhere
    // (lib/config/examples.ts); processes the tests start inherit it.
    env: { LAAS_ALLOW_EXAMPLE_SECRETS: "1" },
  },
});
