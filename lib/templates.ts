/**
 * Where templates/ is: found by walking up from this module — from lib/ when run from source,
 * from wherever a bundler put it otherwise (the Lambda package ships templates/**).
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** templates/<kind> (e.g. "installers", "messages"). */
export function templatesDir(kind: string): string {
  for (let dir = here; ; dir = dirname(dir)) {
    const candidate = join(dir, "templates", kind);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return join(process.cwd(), "templates", kind);
  }
}
