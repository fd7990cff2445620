/**
 * The jobs API's routes under `{dashboard}/api/labs/<lab>/` (reference/dashboard-apis.md §2).
 * They have no trailing slash: `…/jobs/new/` is a 404 on the real dashboard.
 */
import { ConfigError, ProtocolError } from "../../errors";
import type { JobListing } from "../../ports/jobs-dashboard";
import { dashboardRoot } from "../pharos/urls";

export { displayUrl } from "../pharos/urls";

export interface JobsRoutes {
  listing(which: JobListing): URL;
  job(jobId: number): URL;
  task(jobId: number, taskId: string): URL;
}

/** Routes of one lab on one dashboard; the URL and lab name are checked here, once. */
export function jobsRoutes(dashboardUrl: string, lab: string): JobsRoutes {
  const root = dashboardRoot(dashboardUrl);
  const base = new URL(`api/labs/${pathSegment(lab, "lab name")}/`, root);
  return {
    listing: (which) => new URL(`jobs/${which}`, base),
    job: (jobId) => new URL(`jobs/${jobIdSegment(jobId)}`, base),
    task: (jobId, taskId) =>
      new URL(`jobs/${jobIdSegment(jobId)}/${pathSegment(taskId, "task id")}`, base),
  };
}

/** A job id as the route takes it: digits only (anything else is a 404 on the dashboard). */
function jobIdSegment(jobId: number): string {
  if (!Number.isSafeInteger(jobId) || jobId < 0) {
    throw new ProtocolError(`job id ${String(jobId)} is not a dashboard job number`);
  }
  return String(jobId);
}

/**
 * One path segment. "." and ".." are resolved away by URL parsing (the request would reach
 * another route), so they cannot be named; everything else is percent-encoded.
 */
function pathSegment(value: string, what: string): string {
  if (value === "" || value === "." || value === "..") {
    const error = what === "lab name" ? ConfigError : ProtocolError;
    throw new error(`${what} ${JSON.stringify(value)} cannot be a dashboard path segment`);
  }
  return encodeURIComponent(value);
}
