/**
 * `dashboard_api` and `jobs:` in pharos.yaml: the bookings API by default, the jobs API with its
 * lab and its images, each refused at load when the two disagree or a value is wrong.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { loadPharosConfig } from "../lib/config/load";
import { ConfigError } from "../lib/errors";

const REPO = resolve(import.meta.dirname, "..");

let conf: string;
let pharos: string;

beforeEach(() => {
  const root = mkdtempSync(join(tmpdir(), "laas-jobs-config-"));
  conf = join(root, "conf");
  pharos = join(conf, "pharos.yaml");
  cpSync(join(REPO, "conf"), conf, { recursive: true });
  cpSync(join(REPO, "templates"), join(root, "templates"), { recursive: true });
});

afterEach(() => {
  rmSync(join(conf, ".."), { recursive: true, force: true });
});

function edit(change: (doc: ReturnType<typeof parseDocument>) => void): void {
  const doc = parseDocument(readFileSync(pharos, "utf8"));
  change(doc);
  writeFileSync(pharos, String(doc));
}

/** Appends YAML text to pharos.yaml, as an operator writes it (image ids as YAML keys). */
function append(text: string): void {
  writeFileSync(pharos, `${readFileSync(pharos, "utf8")}\n${text}\n`);
}

async function configErrorOf(load: Promise<unknown>): Promise<string> {
  const error = await load.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).message;
}

const JOBS_LAB = `dashboard_api: jobs
jobs:
  lab: my-lab
  images:
    3: 12
    4: 17`;

describe("dashboard_api", () => {
  it("is bookings by default, with no jobs section", async () => {
    const config = await loadPharosConfig(pharos);
    expect(config.dashboardApi).toBe("bookings");
    expect(config.jobs).toBeNull();
  });

  it("may say bookings outright", async () => {
    edit((doc) => doc.set("dashboard_api", "bookings"));
    const config = await loadPharosConfig(pharos);
    expect(config.dashboardApi).toBe("bookings");
    expect(config.jobs).toBeNull();
  });

  it("jobs: the lab and its images, keyed by the dashboard's id as decimal text", async () => {
    append(JOBS_LAB);
    const config = await loadPharosConfig(pharos);
    expect(config.dashboardApi).toBe("jobs");
    expect(config.jobs?.lab).toBe("my-lab");
    expect(config.jobs?.images).toEqual(
      new Map([
        ["3", 12],
        ["4", 17],
      ]),
    );
    // The token is the lab token, read as any secret is.
    expect(config.token.reveal()).toBe(
      readFileSync(join(conf, "secrets", "dashboard-token"), "utf8").trim(),
    );
  });

  it("refuses an API it does not know", async () => {
    edit((doc) => doc.set("dashboard_api", "rest"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: dashboard_api: expected "bookings" or "jobs", got "rest"`,
    );
  });

  it("jobs without a jobs section does not load, naming jobs", async () => {
    edit((doc) => doc.set("dashboard_api", "jobs"));
    const message = await configErrorOf(loadPharosConfig(pharos));
    expect(message).toMatch(new RegExp(`^${pharos}: jobs: required when dashboard_api is jobs`));
  });

  it("a jobs section with the bookings API does not load, by default or said", async () => {
    append("jobs:\n  lab: my-lab\n  images:\n    3: 12");
    expect(await configErrorOf(loadPharosConfig(pharos))).toMatch(
      new RegExp(`^${pharos}: jobs: is for the jobs API: set dashboard_api: jobs`),
    );
    edit((doc) => doc.set("dashboard_api", "bookings"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toContain("jobs: is for the jobs API");
  });
});

describe("jobs", () => {
  beforeEach(() => append(JOBS_LAB));

  it.each([
    ["a slash", "my/lab"],
    ["a space", "my lab"],
    ["the empty name", ""],
    ["'..', which URL parsing resolves away", ".."],
    ["'.'", "."],
    ["a leading '-'", "-lab"],
  ])("lab: refuses %s", async (_, lab) => {
    edit((doc) => doc.setIn(["jobs", "lab"], lab));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: jobs.lab: expected a lab name (letters, digits, '-', '_', '.'; starting with a letter or digit), got ${JSON.stringify(lab)}`,
    );
  });

  it("lab: takes letters, digits, '-', '_', '.'", async () => {
    edit((doc) => doc.setIn(["jobs", "lab"], "UNH_IOL-lab.2"));
    expect((await loadPharosConfig(pharos)).jobs?.lab).toBe("UNH_IOL-lab.2");
  });

  it.each([
    ["not a number", "abc"],
    ["a fraction", "3.5"],
    ["zero", "0"],
    ["negative", "-3"],
    ["written with a leading zero", "03"],
    ["beyond a safe integer", "99999999999999999999"],
  ])("images: refuses a dashboard image id %s", async (_, id) => {
    edit((doc) => doc.setIn(["jobs", "images"], { [id]: 12 }));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: jobs.images.${id}: expected a dashboard image id (a positive integer)`,
    );
  });

  it.each([
    ["zero", 0, "0"],
    ["negative", -4, "-4"],
    ["a fraction", 1.5, "1.5"],
    ["text", "twelve", '"twelve"'],
  ])("images: refuses a FOG image id %s", async (_, value, shown) => {
    edit((doc) => doc.setIn(["jobs", "images", 3], value));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: jobs.images.3: expected a positive integer, got ${shown}`,
    );
  });

  it("images: refuses an empty mapping, and a list", async () => {
    edit((doc) => doc.setIn(["jobs", "images"], {}));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: jobs.images: expected at least one image`,
    );
    edit((doc) => doc.setIn(["jobs", "images"], [12, 17]));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: jobs.images: expected a mapping of the dashboard's image id to a FOG image id, got a list`,
    );
  });

  it("refuses a field it does not know, and requires lab and images", async () => {
    edit((doc) => doc.setIn(["jobs", "labs"], "other"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: jobs: unknown field "labs"`,
    );
    edit((doc) => {
      doc.deleteIn(["jobs", "labs"]);
      doc.deleteIn(["jobs", "lab"]);
      doc.deleteIn(["jobs", "images"]);
    });
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: jobs.lab: required\n${pharos}: jobs.images: required`,
    );
  });

  it("refuses a jobs section that is not a mapping", async () => {
    edit((doc) => doc.set("jobs", "my-lab"));
    expect(await configErrorOf(loadPharosConfig(pharos))).toBe(
      `${pharos}: jobs: expected a mapping {lab, images}, got "my-lab"`,
    );
  });
});
