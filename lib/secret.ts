import { inspect } from "node:util";

/**
 * A credential read from config (inline or from a file). It prints as "[secret]" everywhere —
 * logs, errors, JSON — so only code that calls reveal() on purpose ever sees the value.
 */
export class Secret {
  readonly #value: string;
  /** Where the value came from ("inline" or the file path), safe to show in messages. */
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
