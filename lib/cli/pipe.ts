/**
 * `laas status | head -2`: when the reader of the output goes away, the next write fails with
 * EPIPE (Node ignores SIGPIPE). That is the reader's choice, not a failure: the command stops
 * quietly, exiting 0, rather than with a stack trace.
 */
export function exitQuietlyWhenReaderLeaves(
  stream: NodeJS.WritableStream,
  exit: (code: number) => void,
): void {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") {
      exit(0);
      return;
    }
    throw error;
  });
}
