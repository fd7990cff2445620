/** The dashboard's URL: checked once, and shown in messages without user info. */
import { ConfigError } from "../../errors";

/** The dashboard URL as a base that relative paths extend rather than replace. */
export function dashboardRoot(url: string): URL {
  let root: URL;
  try {
    root = new URL(url);
  } catch {
    throw new ConfigError(`dashboard URL is not a valid URL: ${JSON.stringify(url)}`);
  }
  if (root.protocol !== "http:" && root.protocol !== "https:") {
    throw new ConfigError(`dashboard URL must be http or https: ${displayUrl(root)}`);
  }
  if (root.username !== "" || root.password !== "") {
    throw new ConfigError("dashboard URL must not carry credentials; use the token setting");
  }
  root.search = "";
  root.hash = "";
  if (!root.pathname.endsWith("/")) root.pathname = `${root.pathname}/`;
  return root;
}

/** A URL fit for messages: never with user info. */
export function displayUrl(url: URL): string {
  const copy = new URL(url);
  copy.username = "";
  copy.password = "";
  return copy.href;
}
