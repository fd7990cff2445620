/**
 * ownerOnlyFilesIn (lib/owner-only.ts) tightens the store folder's files while another thread's
 * LevelDB may be replacing them: a file gone by the time it is reached is no failure, any other
 * error still is. The race is made certain by a chmod that finds one file already gone.
 */
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const { gone, denied } = vi.hoisted(() => ({ gone: new Set<string>(), denied: new Set<string>() }));

vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs/promises")>();
  const fail = (code: string, path: string) =>
    Object.assign(new Error(`${code}: ${path}`), { code });
  return {
    ...actual,
    chmod: async (path: string, mode: number) => {
      if (gone.has(path)) {
        await actual.rm(path, { force: true });
        throw fail("ENOENT", path);
      }
      if (denied.has(path)) throw fail("EPERM", path);
      return actual.chmod(path, mode);
    },
  };
});

const { ownerOnlyFilesIn } = await import("../lib/owner-only");

describe("ownerOnlyFilesIn", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "laas-owner-only-"));
    for (const name of ["CURRENT", "MANIFEST-000002", "LOG"]) {
      await writeFile(join(dir, name), "x", { mode: 0o644 });
    }
    gone.clear();
    denied.clear();
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it("skips a file replaced meanwhile and tightens the others", async () => {
    gone.add(join(dir, "MANIFEST-000002"));
    await ownerOnlyFilesIn(dir);
    for (const name of ["CURRENT", "LOG"]) {
      expect((await stat(join(dir, name))).mode & 0o777).toBe(0o600);
    }
  });

  it("still fails on any other error", async () => {
    denied.add(join(dir, "LOG"));
    await expect(ownerOnlyFilesIn(dir)).rejects.toThrow(/EPERM/);
  });
});
