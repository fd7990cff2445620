/**
 * The hand-over's sealing key as its file holds it. Apart from handover.ts so that the check for
 * shipped example secrets (examples.ts) can read it without an import cycle through secrets.ts.
 */

/** Bytes of the AES-256-GCM key that seals credentials until they are delivered. */
export const SEALING_KEY_BYTES = 32;

/**
 * The sealing key as its file holds it: 64 hex digits or base64 of 32 bytes
 * (`openssl rand -base64 32`). Returns the key bytes, or why the value is not one.
 */
export function decodeSealingKey(value: string): Buffer | string {
  const text = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex");
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Buffer.from(text, "base64");
  return `must be ${SEALING_KEY_BYTES} bytes as base64 (openssl rand -base64 32) or 64 hex digits`;
}
