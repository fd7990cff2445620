/** Waiting for something, but not for ever. */

/**
 * Resolves once `work` has settled (fulfilled or rejected) or `ms` have passed, whichever comes
 * first: true when it settled. `work` is not stopped; its outcome is simply not waited for.
 */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}
