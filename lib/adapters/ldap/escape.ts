/**
 * Distinguished names as strings (RFC 4514): escaping an attribute value so that a user name
 * can never add an RDN or change the entry's place in the tree, and parsing DNs so that two
 * spellings of the same place compare equal. Filter values need no escaping here: filters are
 * sent as ldapts Filter objects, whose values travel as raw BER octet strings.
 *
 * ldapts's own RDN escaping is not used: it leaves NUL as is and quotes values with leading or
 * trailing spaces (the RFC 2253 form, which RFC 4514 no longer has).
 */

/** Characters escaped anywhere in a value (RFC 4514 §2.4; `=` is allowed escaped and safer so). */
const SPECIAL = new Set(['"', "+", ",", ";", "<", ">", "\\", "="]);

function hexBytes(character: string): string {
  return [...Buffer.from(character, "utf8")]
    .map((byte) => `\\${byte.toString(16).padStart(2, "0")}`)
    .join("");
}

/** RFC 4514 string form of one attribute value, for `type=<value>` in a DN. */
export function escapeDnValue(value: string): string {
  const characters = [...value];
  const last = characters.length - 1;
  return characters
    .map((character, index) => {
      if (SPECIAL.has(character)) return `\\${character}`;
      // NUL must be escaped; other control characters are, too, so a DN stays one clean line.
      const code = character.codePointAt(0) ?? 0;
      if (code < 0x20 || code === 0x7f) return hexBytes(character);
      if (index === 0 && (character === "#" || character === " ")) return `\\${character}`;
      if (index === last && character === " ") return "\\ ";
      return character;
    })
    .join("");
}

export interface AttributeValueAssertion {
  /** As written (`uid`, `dc`, or an OID); compare with sameRdn(), which ignores its case. */
  type: string;
  /** Unescaped value; a `#`-hex (BER) value stays in its `#…` form. */
  value: string;
}

/** Most significant last: `uid=a,ou=People,dc=x` gives [[uid=a], [ou=People], [dc=x]]. */
export type ParsedDn = AttributeValueAssertion[][];

const HEX_PAIR = /^[0-9a-fA-F]{2}$/;

/**
 * Parses an RFC 4514 DN string. Lenient where LDAPv2-era configuration often is (spaces around
 * `,`, `+` and `=`); throws an Error naming the position of anything malformed.
 */
export function parseDn(dn: string): ParsedDn {
  const rdns: ParsedDn = [];
  let position = 0;
  const fail = (what: string): never => {
    throw new Error(`malformed DN at character ${position + 1} (${what}): ${JSON.stringify(dn)}`);
  };
  const skipSpaces = (): void => {
    while (dn[position] === " ") position++;
  };

  skipSpaces();
  if (position === dn.length) return rdns;
  let rdn: AttributeValueAssertion[] = [];
  for (;;) {
    skipSpaces();
    const typeStart = position;
    while (position < dn.length && /[A-Za-z0-9.-]/.test(dn[position] ?? "")) position++;
    const type = dn.slice(typeStart, position);
    if (!/^([A-Za-z][A-Za-z0-9-]*|\d+(\.\d+)*)$/.test(type)) fail("attribute type expected");
    skipSpaces();
    if (dn[position] !== "=") fail('"=" expected');
    position++;
    skipSpaces();

    let value: string;
    if (dn[position] === "#") {
      const start = position;
      position++;
      while (position < dn.length && /[0-9a-fA-F]/.test(dn[position] ?? "")) position++;
      value = dn.slice(start, position).toLowerCase();
      if (value.length < 3 || value.length % 2 === 0) fail("hex value expected after #");
      skipSpaces();
    } else {
      const bytes: number[] = [];
      // Unescaped spaces at the end of a value are not part of it; escaped ones are.
      let trailingSpaces = 0;
      while (position < dn.length) {
        const character = dn[position] ?? "";
        if (character === "," || character === "+" || character === ";") break;
        if (character === "\\") {
          const pair = dn.slice(position + 1, position + 3);
          if (HEX_PAIR.test(pair)) {
            bytes.push(Number.parseInt(pair, 16));
            position += 3;
          } else {
            const escaped = dn[position + 1];
            if (escaped === undefined) fail("dangling escape");
            bytes.push(...Buffer.from(escaped ?? "", "utf8"));
            position += 2;
          }
          trailingSpaces = 0;
          continue;
        }
        if (character === '"') fail("quoted values are not RFC 4514");
        const codePoint = dn.codePointAt(position) ?? 0;
        const whole = String.fromCodePoint(codePoint);
        bytes.push(...Buffer.from(whole, "utf8"));
        trailingSpaces = character === " " ? trailingSpaces + 1 : 0;
        position += whole.length;
      }
      const kept = bytes.slice(0, bytes.length - trailingSpaces);
      const decoded = new TextDecoder("utf-8", { fatal: true });
      try {
        value = decoded.decode(Uint8Array.from(kept));
      } catch {
        value = fail("escaped bytes are not UTF-8");
      }
    }
    rdn.push({ type, value });

    const separator = dn[position];
    if (separator === undefined) {
      rdns.push(rdn);
      return rdns;
    }
    position++;
    if (separator === "+") continue;
    rdns.push(rdn);
    rdn = [];
  }
}

/**
 * Values compared the way caseIgnoreMatch does for the names a directory tree is made of
 * (dc, ou, o, cn): case and insignificant spaces do not count.
 */
function normalizedValue(value: string): string {
  return value.normalize("NFKC").trim().replace(/ +/g, " ").toLowerCase();
}

function avaKey(ava: AttributeValueAssertion): string {
  return `${ava.type.toLowerCase()}=${normalizedValue(ava.value)}`;
}

export function sameRdn(a: AttributeValueAssertion[], b: AttributeValueAssertion[]): boolean {
  if (a.length !== b.length) return false;
  const keysOfB = b.map(avaKey).sort();
  return a
    .map(avaKey)
    .sort()
    .every((key, index) => key === keysOfB[index]);
}

/**
 * Whether `dn` names an entry right below `parent` (one RDN more). Attribute types are compared
 * by name only (an OID spelling of the same type does not match, which errs on the side of "no").
 */
export function isDirectChildOf(dn: ParsedDn, parent: ParsedDn): boolean {
  if (dn.length !== parent.length + 1) return false;
  return parent.every((rdn, index) => sameRdn(rdn, dn[index + 1] ?? []));
}

/** Whether two DNs name the same entry (attribute types compared by name, as above). */
export function sameDn(a: ParsedDn, b: ParsedDn): boolean {
  return a.length === b.length && a.every((rdn, index) => sameRdn(rdn, b[index] ?? []));
}
