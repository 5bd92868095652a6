/**
 * Resolves with the first SIGTERM or SIGINT. A second one while shutting down exits at
 * once (status 130 for SIGINT, 143 for SIGTERM): the operator asked twice.
 */
export function untilShutdownSignal(onSecond: (signal: NodeJS.Signals) => void = defaultSecondSignal): Promise<NodeJS.Signals> {
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
  });
}

function defaultSecondSignal(signal: NodeJS.Signals): void {
  process.stderr.write(`weldr: second ${signal}, exiting immediately\n`);
  process.exit(signal === 'SIGINT' ? 130 : 143);
}
