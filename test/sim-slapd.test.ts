import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startSlapd } from "../sim/slapd";

let holder: Server | null = null;
afterEach(async () => {
  await new Promise<void>((resolve) => (holder ? holder.close(() => resolve()) : resolve()));
  holder = null;
});

describe("the slapd the tests run", () => {
  it("starts on other ports when the one it picked is taken by the time it starts", async () => {
    const taken = await new Promise<number>((resolve) => {
      holder = createServer().listen(0, "127.0.0.1", () => {
        const bound = holder?.address();
        resolve(typeof bound === "object" && bound ? bound.port : 0);
      });
    });
    const slapd = await startSlapd({ ldapPort: taken });
    try {
      expect(new URL(slapd.url).port).not.toBe(String(taken));
      const client = await slapd.adminClient();
      await client.unbind();
    } finally {
      await slapd.stop();
    }
  }, 60_000);
});
