// `weldr start`: load the configuration, run the node until a signal, shut down cleanly.
import { checkClusterConfig } from '../config/cluster-rules.js';
import { loadConfig } from '../config/load-config.js';
import { settingsView } from '../config/settings-view.js';
import { openNodeTls } from '../runtime/tls-setup.js';
import { ListenError } from '../runtime/listen.js';
import { createLogger, flushLogger, flushLoggerSync } from '../runtime/logger.js';
import { MemberWithoutAuthError, startNode, type NodeFailure } from '../runtime/node-runtime.js';
import { EXIT_USAGE } from '../config/config-error.js';
import { DataDirRefusedError, StoreOpenError } from '../runtime/store-factory.js';
import { startHelp } from './start-help.js';
import { untilShutdownSignal } from './signals.js';
import { weldrVersion } from './version.js';
import { tierUpSooner } from '../runtime/v8-tiering.js';

/** Exit code for a failure at run time (a port in use, an unreadable data directory). */
const EXIT_FAILURE = 1;
/**
 * A write to the data directory failed (disk full, read-only, I/O error), or a listener
 * threw inside the store or the Raft loop, while running: the node gave up its role and
 * stopped; nothing after the failure was acknowledged. Restarting is right once the
 * cause is fixed (docs/operations.md).
 */
const EXIT_FATAL = 3;
/** The data directory is damaged, lost its files, or belongs to another node: restarting cannot help. */
const EXIT_DATA_REFUSED = 4;
/** How long closing the admin API and the store may take after the proxy's deadline. */
const SHUTDOWN_GRACE_MS = 5000;

export async function startCommand(argv: readonly string[]): Promise<number> {
  // Before the node's code first runs hot (runtime/v8-tiering.ts).
  tierUpSooner();
  const loaded = loadConfig({ argv, env: process.env });
  if (loaded.help) {
    process.stdout.write(startHelp());
    return 0;
  }
  const { sources, configFile, unknownEnv } = loaded;
  const config = checkClusterConfig(loaded.config, sources.raft === 'default');

  const log = createLogger(config.id, config.logLevel);
  // A bug that escapes every handler: say so in the log the operator reads, then exit 1
  // (the supervisor restarts the node; its state is in the store, not in memory).
  const crash = (err: unknown, origin: string): void => {
    log.fatal({ event: 'crashed', origin, err }, `${origin}: ${err instanceof Error ? err.message : String(err)}`);
    flushLoggerSync(log);
    process.exit(EXIT_FAILURE);
  };
  process.on('uncaughtException', (err) => crash(err, 'uncaughtException'));
  process.on('unhandledRejection', (err) => crash(err, 'unhandledRejection'));
  // Registered before anything starts, so a signal during startup is not lost.
  const signal = untilShutdownSignal((second) => {
    log.warn({ event: 'exit_now', signal: second }, `second ${second}: exiting immediately`);
    flushLoggerSync(log);
    process.exit(second === 'SIGINT' ? 130 : 143);
  });
  // SIGHUP re-reads the certificates (as nginx and HAProxy do): peer, admin and proxy
  // TLS. Handled from the start: its default action would end the process.
  let reload = (): void => undefined;
  process.on('SIGHUP', () => reload());
  log.info(
    {
      event: 'starting',
      version: weldrVersion(),
      configFile,
      config: settingsView(config),
      sources,
    },
    'weldr starting',
  );
  if (unknownEnv.length > 0) {
    log.warn({ event: 'unknown_env', names: unknownEnv }, `ignored environment variables that name no setting: ${unknownEnv.join(', ')} (see 'weldr start --help')`);
  }

  // After a fatal failure the node has already given up its role (readiness off,
  // on-passive run): one line says what failed and what to do, then exit at once.
  const onFatal = (failure: NodeFailure): void => {
    log.fatal({ event: 'fatal', kind: failure.kind, data: failure.data, err: { message: failure.error.message } }, failure.message);
    process.stderr.write(`weldr: ${failure.message}\n`);
    flushLoggerSync(log);
    process.exit(EXIT_FATAL);
  };
  // TLS files are checked before anything listens: an unusable one is exit 2.
  const tls = openNodeTls(config, log);
  reload = () => tls.reload('SIGHUP');

  // A stop asked for while the node is still starting (a join that keeps retrying, say)
  // ends the start: what it opened is closed, and the process exits 0. If the start
  // cannot be interrupted, the shutdown timeout ends the process all the same.
  const starting = new AbortController();
  let started = false;
  let stuck: NodeJS.Timeout | undefined;
  void signal.then((received) => {
    if (started) return;
    log.info({ event: 'stopping', signal: received }, `${received} while starting: stopping`);
    starting.abort(new Error(`stopped by ${received}`));
    stuck = setTimeout(() => {
      log.warn({ event: 'exit_now', signal: received }, `still starting ${config.shutdownTimeout} ms after ${received}: exiting`);
      flushLoggerSync(log);
      process.exit(EXIT_FAILURE);
    }, config.shutdownTimeout).unref();
  });
  let node;
  try {
    node = await startNode(config, log, { onFatal, tls, signal: starting.signal });
  } catch (err) {
    if (starting.signal.aborted) {
      clearTimeout(stuck);
      log.info({ event: 'stopped' }, 'weldr stopped before it had started');
      await flushLogger(log);
      return 0;
    }
    if (err instanceof ListenError || err instanceof StoreOpenError) {
      const refused = err instanceof DataDirRefusedError;
      log.fatal({ event: 'start_failed', ...(refused ? { reason: err.reason } : {}), err: { message: err.message } }, err.message);
      process.stderr.write(`weldr start: ${err.message}\n`);
      await flushLogger(log);
      return refused ? EXIT_DATA_REFUSED : err instanceof MemberWithoutAuthError ? EXIT_USAGE : EXIT_FAILURE;
    }
    throw err;
  }

  // Started after all (the stop came too late to interrupt anything): the stop below is the usual one.
  started = true;
  clearTimeout(stuck);
  const running = node;
  reload = () => {
    tls.reload('SIGHUP');
    running.reloadTls();
    running.reopenLogs();
  };
  // A cluster member may have to stop on its own: removed from the cluster (exit 0), or
  // told by its peers that its data directory is not the one they know (exit 1).
  const outcome = await Promise.race([signal.then((received) => ({ received })), node.ended.then((end) => ({ end }))]);
  let exitCode = 0;
  if ('end' in outcome) {
    exitCode = outcome.end.exitCode;
    process.stderr.write(`weldr start: ${outcome.end.message}\n`);
    log.info({ event: 'stopping', reason: outcome.end.reason, deadlineMs: config.shutdownTimeout }, `${outcome.end.reason}: shutting down`);
  } else {
    log.info({ event: 'stopping', signal: outcome.received, deadlineMs: config.shutdownTimeout }, `${outcome.received}: shutting down`);
  }
  // The proxy gives up on in-flight requests at the deadline; if closing the rest
  // hangs beyond a grace period, exit anyway rather than leave a half-stopped node.
  const overrun = setTimeout(() => {
    log.error({ event: 'exit_now', reason: 'shutdown overran its deadline' }, 'shutdown overran its deadline: exiting');
    flushLoggerSync(log);
    process.exit(EXIT_FAILURE);
  }, config.shutdownTimeout + SHUTDOWN_GRACE_MS).unref();
  const stopped = Date.now();
  await node.stop();
  tls.close();
  clearTimeout(overrun);
  log.info({ event: 'stopped', ms: Date.now() - stopped }, 'weldr stopped');
  await flushLogger(log);
  // Safety net: if something keeps the event loop alive after a clean stop, exit anyway.
  setTimeout(() => process.exit(exitCode), SHUTDOWN_GRACE_MS).unref();
  return exitCode;
}

