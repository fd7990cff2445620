/**
 * libvirt XML for the virtual pod, rendered from the lab's nunjucks templates (the seed's
 * `jinja-template` of the network and domain files). Autoescape is on, so every value a template
 * prints is XML-escaped: a name holding quotes, `<`, `&` or `$(…)` stays text inside its element
 * or attribute and cannot open another one.
 */
import { basename, dirname } from "node:path";
import nunjucks from "nunjucks";
import { displayPath } from "../config/paths";
import type { DomainDefinition, DomainFile, NetworkDefinition, NetworkFile } from "../config/types";
import { ConfigError, errorMessage } from "../errors";

/** Values the domain template gets besides the definition itself. */
export interface DomainRenderExtra {
  /** Disk image to use instead of the definition's `disk` (same meaning: a path on the host). */
  diskPath?: string;
}

/**
 * One environment per template directory, so that a template may `{% include %}` its
 * neighbours. throwOnUndefined makes a misspelt field (or a null one printed) a render error
 * instead of an empty attribute that libvirt would read as something else. Templates are
 * compiled once per process: the lab reads its templates as it reads its config, at start.
 */
const environments = new Map<string, nunjucks.Environment>();

function environmentFor(directory: string): nunjucks.Environment {
  let environment = environments.get(directory);
  if (!environment) {
    environment = new nunjucks.Environment(new nunjucks.FileSystemLoader(directory), {
      autoescape: true,
      throwOnUndefined: true,
    });
    environments.set(directory, environment);
  }
  return environment;
}

/**
 * Characters XML 1.0 cannot carry at all, not even as character references: C0 controls other
 * than tab, line feed and carriage return, lone surrogates, U+FFFE and U+FFFF. Escaping cannot
 * help with these, so such a value is refused rather than rendered into a broken document.
 */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function checkXmlText(value: unknown, path: string, template: string): void {
  if (typeof value === "string") {
    const bad = NOT_XML_CHAR.exec(value);
    if (bad) {
      const code = (bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0");
      throw new ConfigError(
        `${displayPath(template)}: ${path}: holds U+${code}, which an XML document cannot carry`,
      );
    }
  } else if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) checkXmlText(item, `${path}[${index}]`, template);
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) checkXmlText(item, `${path}.${key}`, template);
  }
}

function render(template: string, context: Record<string, unknown>): string {
  for (const [key, value] of Object.entries(context)) checkXmlText(value, key, template);
  try {
    return environmentFor(dirname(template)).render(basename(template), context);
  } catch (error) {
    throw new ConfigError(`${displayPath(template)}: cannot render: ${errorMessage(error)}`);
  }
}

/** The libvirt network XML of one network of a network file (context: `network`). */
export function renderNetworkXml(file: NetworkFile, network: NetworkDefinition): string {
  return render(file.template, { network });
}

/**
 * The libvirt domain XML of one domain of a domain file (context: `domain`). Memory is in KiB,
 * as the seed says; the shipped template writes `unit="KiB"` so libvirt reads it so.
 */
export function renderDomainXml(
  file: DomainFile,
  domain: DomainDefinition,
  extra: DomainRenderExtra = {},
): string {
  const disk = extra.diskPath ?? domain.disk;
  return render(file.template, { domain: { ...domain, disk } });
}
