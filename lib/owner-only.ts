/**
 * Folders and files only their owner can use: the embedded store, the listener's record (which
 * holds the store's credential) and the logs. The mode is given when the folder or file is made
 * (so it is never open to others, even for a moment) and then set again with chmod, so the process
 * umask cannot make it looser or different, and a folder or file left from before is tightened.
 */
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync } from "node:fs";
import { chmod, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { isMainThread } from "node:worker_threads";
import { errorMessage, LaasError } from "./errors";

export const OWNER_ONLY_FOLDER = 0o700;
export const OWNER_ONLY_FILE = 0o600;

/** A folder laas must keep to itself belongs to another user, or is shared with others. */
export class UnsafeFolderError extends LaasError {
  override name = "UnsafeFolder";
}

/**
 * Makes `path` (and any missing parent) and leaves it 0700. An existing folder is tightened to
 * 0700 when it is this user's; one that belongs to another user, or that others may write to (a
 * shared folder such as /tmp, whose mode must not be changed and which may hold anyone's files),
 * is refused. `what` names the folder in messages, e.g. "the store folder".
 */
export async function ownerOnlyFolder(path: string, what: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: OWNER_ONLY_FOLDER });
  const found = await stat(path);
  if (!found.isDirectory()) throw new UnsafeFolderError(`${what} ${path} is not a folder`);
  const uid = process.getuid?.();
  if (uid !== undefined && found.uid !== uid) {
    throw new UnsafeFolderError(
      `${what} ${path} belongs to uid ${found.uid}, but laas runs as uid ${uid}: ` +
        "run laas as the user that owns it (or chown the folder to the user that runs laas)",
    );
  }
  // Sticky (as /tmp) or writable by others: anyone may have put files there.
  if ((found.mode & 0o1002) !== 0) {
    throw new UnsafeFolderError(
      `${what} ${path} is writable by other users (mode ${(found.mode & 0o7777).toString(8)}), ` +
        "so it may hold files that are not laas's: give it a folder of its own " +
        "(or, if the folder is laas's alone, `chmod 700` it)",
    );
  }
  await chmod(path, OWNER_ONLY_FOLDER);
}

/**
 * Tightens every file directly in `folder` to 0600 (what an older laas left there as 0644). A file
 * that is gone by the time it is reached needs nothing: the store's own LevelDB, held by another
 * process or thread, replaces its manifest and logs as it goes.
 */
export async function ownerOnlyFilesIn(folder: string): Promise<void> {
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    await chmod(join(folder, entry.name), OWNER_ONLY_FILE).catch((error: unknown) => {
      if (!(error instanceof Error && Reflect.get(error, "code") === "ENOENT")) throw error;
    });
  }
}

/**
 * Writes `path` whole or not at all (a temporary file in the same folder, renamed over it), as a
 * 0600 file whatever the umask.
 */
export async function writeOwnerOnlyFile(path: string, content: string): Promise<void> {
  const partial = `${path}.${process.pid}.tmp`;
  const handle = await open(partial, "w", OWNER_ONLY_FILE);
  try {
    await handle.chmod(OWNER_ONLY_FILE);
    await handle.writeFile(content);
  } catch (error) {
    await handle.close();
    await rm(partial, { force: true });
    throw error;
  }
  await handle.close();
  await rename(partial, path);
}

/**
 * Makes the log file `file` exist as 0600 (an existing one is tightened), its folder made 0700 if
 * laas creates it. An existing log folder is left as it is: it may be a shared one (/var/log).
 * Synchronous, as the logger that writes there is.
 */
export function ownerOnlyLogFile(file: string): void {
  const folder = resolve(dirname(file));
  const firstMade = mkdirSync(folder, { recursive: true, mode: OWNER_ONLY_FOLDER });
  if (firstMade !== undefined) {
    const top = resolve(firstMade);
    for (let made = folder; ; made = dirname(made)) {
      chmodSync(made, OWNER_ONLY_FOLDER);
      if (made === top || made === dirname(made)) break;
    }
  }
  let fd: number;
  try {
    fd = openSync(file, "a", OWNER_ONLY_FILE);
  } catch (error) {
    throw new LaasError(`Cannot open the log file ${file}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  try {
    fchmodSync(fd, OWNER_ONLY_FILE);
  } catch (error) {
    throw new LaasError(`Cannot make the log file ${file} owner-only: ${errorMessage(error)}`, {
      cause: error,
    });
  } finally {
    closeSync(fd);
  }
}

let umaskHolders = 0;
let umaskBefore = 0;

/**
 * Keeps group and others out of every file and folder this process creates until the returned
 * function is called: LevelDB (under dynalite) makes its files as it goes (logs, tables, the
 * manifest) with the process umask, and has no mode option. Nested holds are counted; the umask
 * from before comes back when the last is released. In a worker thread the umask cannot be changed:
 * there only the 0700 store folder keeps others out of the store's files.
 */
export function keepNewFilesOwnerOnly(): () => void {
  if (!isMainThread) return () => undefined;
  if (umaskHolders === 0) {
    // process.umask() without an argument is deprecated: set one, and learn the old from it.
    umaskBefore = process.umask(0o077);
    process.umask(umaskBefore | 0o077);
  }
  umaskHolders += 1;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    umaskHolders -= 1;
    if (umaskHolders === 0) process.umask(umaskBefore);
  };
}
