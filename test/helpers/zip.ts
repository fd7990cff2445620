/**
 * Reads a zip archive (a deployment package) without an unzip dependency: the entry names from
 * its central directory, and their contents. Zip64 archives and encryption are not handled.
 */
import { inflateRawSync } from "node:zlib";

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;

interface Entry {
  name: string;
  method: number;
  compressedSize: number;
  localHeader: number;
}

function entries(archive: Buffer): Entry[] {
  // The end record is 22 bytes plus a comment of up to 64 KiB: search backwards for it.
  const earliest = Math.max(0, archive.length - 22 - 0xffff);
  let end = -1;
  for (let at = archive.length - 22; at >= earliest; at--) {
    if (archive.readUInt32LE(at) === END_OF_CENTRAL_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new Error("not a zip archive (no end of central directory record)");
  const count = archive.readUInt16LE(end + 10);
  let at = archive.readUInt32LE(end + 16);
  const found: Entry[] = [];
  for (let i = 0; i < count; i++) {
    if (archive.readUInt32LE(at) !== CENTRAL_DIRECTORY_ENTRY) {
      throw new Error(`zip central directory entry ${i} is damaged`);
    }
    const nameLength = archive.readUInt16LE(at + 28);
    found.push({
      name: archive.toString("utf8", at + 46, at + 46 + nameLength),
      method: archive.readUInt16LE(at + 10),
      compressedSize: archive.readUInt32LE(at + 20),
      localHeader: archive.readUInt32LE(at + 42),
    });
    at += 46 + nameLength + archive.readUInt16LE(at + 30) + archive.readUInt16LE(at + 32);
  }
  return found;
}

export function zipEntryNames(archive: Buffer): string[] {
  return entries(archive).map((e) => e.name);
}

/** Every file in the archive (directories left out) by name. */
export function unzip(archive: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const entry of entries(archive)) {
    if (entry.name.endsWith("/")) continue;
    const at = entry.localHeader;
    if (archive.readUInt32LE(at) !== LOCAL_FILE_HEADER) {
      throw new Error(`zip entry ${entry.name}: damaged local header`);
    }
    const start = at + 30 + archive.readUInt16LE(at + 26) + archive.readUInt16LE(at + 28);
    const data = archive.subarray(start, start + entry.compressedSize);
    if (entry.method === 0) files.set(entry.name, Buffer.from(data));
    else if (entry.method === 8) files.set(entry.name, inflateRawSync(data));
    else throw new Error(`zip entry ${entry.name}: compression method ${entry.method}`);
  }
  return files;
}
