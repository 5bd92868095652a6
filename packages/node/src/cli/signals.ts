/**
 * Why a process stops: a signal, or `parent-gone` — the supervisor that started it with
 * WELDR_STOP_WITH_PARENT=stdin (`weldr dev-cluster`) is gone: its end of our stdin closed.
 */
export type ShutdownReason = NodeJS.Signals | 'parent-gone';

/** The environment variable a supervisor sets to tie a child's life to its own (see above). */
export const STOP_WITH_PARENT_ENV = 'WELDR_STOP_WITH_PARENT';

/**
 * Resolves with the first SIGTERM or SIGINT. A second one while shutting down exits at
 * once (status 130 for SIGINT, 143 for SIGTERM): the operator asked twice.
 *
 * With WELDR_STOP_WITH_PARENT=stdin it also resolves ('parent-gone') when stdin ends:
 * the parent holds the pipe's other end, and the kernel closes it however the parent
 * ends — even SIGKILL, which the parent cannot catch to stop its children itself. The
 * stop is then the same graceful one as SIGTERM's.
 */
export function untilShutdownSignal(onSecond: (signal: NodeJS.Signals) => void = defaultSecondSignal): Promise<ShutdownReason> {
  return new Promise((resolve) => {
    let received = false;
    const handler = (signal: NodeJS.Signals): void => {
      if (received) {
        onSecond(signal);
        return;
      }
      received = true;
      resolve(signal);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
    if (process.env[STOP_WITH_PARENT_ENV] === 'stdin') {
      const gone = (): void => {
        if (received) return;
        received = true;
        resolve('parent-gone');
      };
      process.stdin.on('end', gone);
      process.stdin.on('close', gone);
      // EPIPE/ECONNRESET on a pipe whose writer died is the same news.
      process.stdin.on('error', gone);
      // Read (and drop) whatever arrives so that 'end' is seen; unref'd: the pipe alone
      // must not keep a process alive that has finished everything else.
      process.stdin.on('data', () => undefined);
      process.stdin.resume();
      (process.stdin as unknown as { unref?: () => void }).unref?.();
    }
  });
}

function defaultSecondSignal(signal: NodeJS.Signals): void {
  process.stderr.write(`weldr: second ${signal}, exiting immediately\n`);
  process.exit(signal === 'SIGINT' ? 130 : 143);
}
