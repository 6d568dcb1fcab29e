/**
 * Stops a CLI process cleanly on SIGINT/SIGTERM: runs `close` once (clients are told to reconnect
 * and drained there), then exits; a second signal or a hung close exits after 10 s regardless.
 */
export function stopOnSignals(close: () => Promise<void>, describe: (signal: string) => string): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${describe(signal)}`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

/**
 * Runs a CLI entry point, printing a failure's message (not its stack) and exiting with the error's
 * `exitCode` (2 for bad usage) or 1.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    const code = (error as { exitCode?: unknown } | null)?.exitCode;
    process.exit(typeof code === 'number' ? code : 1);
  });
}
