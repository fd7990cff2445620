/**
 * The functions' deployment packages: zipped and unzipped size per function, the code a cold
 * start loads, and how long that import takes (median of fresh `node` processes). Measured
 * against the old settings, rebuilt in the same run from today's sources: one package shared by
 * every function (the four entries poll, steps, watch and sweep, each built with its own chunks
 * into the one folder, as serverless-esbuild did), unminified, with source maps loaded through
 * --enable-source-maps, the embedded default in it, and all of conf/, templates/ and
 * statemachines/ beside it.
 *
 * What a cold start loads is the handler's module and, on the first call, the cloud runtime's
 * chunk (lib/app/cloud.ts), with everything they import statically; both are imported here.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { deflateRawSync } from "node:zlib";
import { build } from "esbuild";
import { serverless, serviceCopy } from "../test/helpers/serverless";
import { unzip } from "../test/helpers/zip";

export interface BundleRow {
  design: "per function" | "shared (before)";
  /** The function, or for the shared package the entry several functions share. */
  name: string;
  functions: number;
  zipBytes: number;
  unzippedBytes: number;
  /** Code a cold start loads: the handler, the cloud runtime, their static imports. */
  loadedBytes: number;
  /** Source maps Node reads for that code (--enable-source-maps). */
  loadedMapBytes: number;
  /** Median wall time of the import, and its CPU time (steadier on a busy machine). */
  importMs: number;
  importCpuMs: number;
}

/** The size of a zip (deflate, as serverless-esbuild writes them) of `files`. */
function zipSize(files: Map<string, Buffer>): number {
  let size = 22; // end of central directory
  for (const [name, content] of files) {
    const name8 = Buffer.byteLength(name);
    size += 30 + name8 + Math.min(deflateRawSync(content).length, content.length) + 46 + name8;
  }
  return size;
}

async function filesUnder(dir: string, base = dir): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      for (const [name, content] of await filesUnder(path, base)) files.set(name, content);
    } else if (entry.isFile()) {
      files.set(relative(base, path), await readFile(path));
    }
  }
  return files;
}

/** `entry` and the modules it imports statically, transitively (relative imports of the build). */
function staticClosure(files: Map<string, Buffer>, entries: string[]): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file) || !files.has(file)) return;
    seen.add(file);
    const code = String(files.get(file));
    for (const match of code.matchAll(/(?:\bfrom\s*|\bimport\s*)["'](\.\.?\/[^"']+)["']/g)) {
      visit(join(dirname(file), match[1] ?? ""));
    }
  };
  for (const entry of entries) visit(entry);
  return [...seen];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Milliseconds (wall and CPU) for a fresh node process to import `modules` (in `cwd`), the median
 * of `runs`.
 */
async function importTimes(
  cwd: string,
  modules: string[],
  runs: number,
  nodeOptions: string[],
): Promise<{ wall: number; cpu: number }> {
  const script = `const t = performance.now();
    const c = process.cpuUsage();
    for (const m of ${JSON.stringify(modules.map((m) => `./${m}`))}) await import(m);
    const used = process.cpuUsage(c);
    console.log(JSON.stringify({ wall: performance.now() - t, cpu: (used.user + used.system) / 1000 }));`;
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < runs; i++) {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [...nodeOptions, "--input-type=module", "-e", script], {
        cwd,
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += String(chunk);
      });
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += String(chunk);
      });
      child.on("error", reject);
      child.on("close", (code) =>
        code === 0 ? resolve(stdout) : reject(new Error(`import failed (${code}): ${stderr}`)),
      );
    });
    const measured = JSON.parse(out.trim()) as { wall: number; cpu: number };
    walls.push(measured.wall);
    cpus.push(measured.cpu);
  }
  return { wall: median(walls), cpu: median(cpus) };
}

async function measure(
  design: BundleRow["design"],
  name: string,
  functions: number,
  files: Map<string, Buffer>,
  zipBytes: number,
  handler: string,
  runs: number,
  nodeOptions: string[],
): Promise<BundleRow> {
  // The chunk the handler's code imports on its first call for the cloud runtime.
  const cloudChunk = staticClosure(files, [handler])
    .flatMap((file) =>
      [
        ...String(files.get(file)).matchAll(
          /\bimport\(\s*["'](\.\/(?:index\.)?cloud-\w+\.js)["']\s*\)/g,
        ),
      ].map((m) => join(dirname(file), m[1] ?? "")),
    )
    .find((file) => files.has(file));
  if (!cloudChunk) throw new Error(`${name}: ${handler} imports no cloud runtime chunk`);
  const loaded = staticClosure(files, [handler, cloudChunk]);
  const work = await mkdtemp(join(tmpdir(), "laas-bench-bundle-"));
  try {
    for (const [file, content] of files) {
      await mkdir(dirname(join(work, file)), { recursive: true });
      await writeFile(join(work, file), content);
    }
    const times = await importTimes(work, [handler, cloudChunk], runs, nodeOptions);
    return {
      design,
      name,
      functions,
      zipBytes,
      unzippedBytes: [...files.values()].reduce((sum, content) => sum + content.length, 0),
      loadedBytes: loaded.reduce((sum, file) => sum + (files.get(file)?.length ?? 0), 0),
      loadedMapBytes: loaded.reduce(
        (sum, file) => sum + (files.get(`${file}.map`)?.length ?? 0),
        0,
      ),
      importMs: times.wall,
      importCpuMs: times.cpu,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The old shared package, rebuilt from the service's sources with the old settings. */
async function sharedBefore(serviceDir: string): Promise<Map<string, Buffer>> {
  const out = await mkdtemp(join(tmpdir(), "laas-bench-shared-"));
  try {
    // As serverless-esbuild built them: each entry on its own (its own chunks), into functions/.
    const entries = {
      poll: "functions/poll/index.ts",
      steps: "functions/steps.ts",
      watch: "functions/watch/index.ts",
      sweep: "functions/sweep/index.ts",
    };
    for (const [name, source] of Object.entries(entries)) {
      await build({
        absWorkingDir: serviceDir,
        entryPoints: { [name]: source },
        outdir: join(out, "functions"),
        bundle: true,
        minify: false,
        sourcemap: true,
        target: "node22",
        platform: "node",
        format: "esm",
        splitting: true,
        external: ["dynalite", "aws-local-stepfunctions", "cpu-features"],
        loader: { ".node": "copy" },
        banner: {
          js: "import { createRequire as laasCreateRequire } from 'node:module'; import { dirname as laasDirname } from 'node:path'; import { fileURLToPath as laasFileURLToPath } from 'node:url'; const require = laasCreateRequire(import.meta.url); const __filename = laasFileURLToPath(import.meta.url); const __dirname = laasDirname(__filename);",
        },
        logLevel: "error",
      });
    }
    const files = await filesUnder(out);
    // The old patterns: functions/package.json, conf/** (its secrets too), templates/**,
    // statemachines/**. Only sized here, never written anywhere.
    files.set(
      "functions/package.json",
      await readFile(join(serviceDir, "functions", "package.json")),
    );
    for (const folder of ["conf", "templates", "statemachines"]) {
      for (const [file, content] of await filesUnder(join(serviceDir, folder))) {
        files.set(`${folder}/${file}`, content);
      }
    }
    return files;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

export async function bundles(options: { runs: number }): Promise<BundleRow[]> {
  const service = await serviceCopy();
  const packaged = await mkdtemp(join(tmpdir(), "laas-bench-package-"));
  try {
    const result = await serverless(service.dir, ["package", "--package", packaged]);
    if (result.code !== 0) throw new Error(`serverless package failed:\n${result.stderr}`);
    const rows: BundleRow[] = [];
    const zips = (await readdir(packaged)).filter((file) => file.endsWith(".zip")).sort();
    for (const zip of zips) {
      const path = join(packaged, zip);
      const files = unzip(await readFile(path));
      const name = zip.slice(0, -".zip".length);
      const handler = [...files.keys()].find((file) => /^functions\/.*\/index\.js$/.test(file));
      if (!handler) throw new Error(`${zip}: no handler`);
      rows.push(
        await measure(
          "per function",
          name,
          1,
          files,
          (await stat(path)).size,
          handler,
          options.runs,
          [],
        ),
      );
    }
    const shared = await sharedBefore(service.dir);
    const sharedZip = zipSize(shared);
    for (const [entry, functions] of [
      ["poll", 1],
      ["steps", 15],
      ["watch", 1],
      ["sweep", 1],
    ] as const) {
      rows.push(
        await measure(
          "shared (before)",
          entry,
          functions,
          shared,
          sharedZip,
          `functions/${entry}.js`,
          options.runs,
          ["--enable-source-maps"],
        ),
      );
    }
    return rows;
  } finally {
    await rm(packaged, { recursive: true, force: true });
    await service.remove();
  }
}
