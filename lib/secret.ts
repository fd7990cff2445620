import { inspect } from "node:util";

/**
 * A credential read from config (inline, from a file or from a secret store). It prints as
 * "[secret]" everywhere — logs, errors, JSON — so only code that calls reveal() on purpose ever
 * sees the value.
 */
export class Secret {
  readonly #value: string;
  /**
   * Where the value came from, safe to show in messages: "inline", the file path, or the secret
   * store reference (`ssm:/laas/prod/token`, `secretsmanager:laas/prod/relay-key`).
   */
  readonly source: string;

  constructor(value: string, source = "inline") {
    this.#value = value;
    this.source = source;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return "[secret]";
  }

  toJSON(): string {
    return "[secret]";
  }

  [inspect.custom](): string {
    return `Secret(${this.source})`;
  }
}
