import { randomUUID } from 'node:crypto';
import { StoreError } from '../pool/errors.js';
import type { CommandEnvelope, PoolCommand, ProposeOptions } from '../pool/types.js';
import { validateCommand, validateRequestId } from '../pool/validate.js';
import { auditMetaOf } from '../pool/audit.js';

/**
 * Turns a proposal into the envelope that is applied (or logged): validated, canonical,
 * with a request id. Throws StoreError('INVALID_COMMAND') before anything is written.
 * Random ids are fine here — the proposer is not part of the replicated state machine.
 */
export function prepareEnvelope(command: unknown, options: ProposeOptions = {}, now: () => number = Date.now): CommandEnvelope {
  const requestId = options.requestId === undefined ? randomUUID() : validateRequestId(options.requestId);
  const envelope = { requestId, command: validateCommand(command) };
  if (options.origin === undefined) return envelope;
  // The proposer is the leader (followers relay writes to it): its clock dates the entry,
  // and every replica records that same time.
  const meta = auditMetaOf({ at: now(), nodeId: options.origin.nodeId, ...(options.origin.client === undefined ? {} : { client: options.origin.client }) });
  return meta === undefined ? envelope : { ...envelope, meta };
}

export function stoppedError(): StoreError {
  return new StoreError('STOPPED', 'the pool store is closed');
}

/**
 * Waits for `work`, but gives up after timeoutMs or on abort. Giving up does not cancel
 * the work: the error says the write may still apply, which is the truth for a log.
 */
export function awaitWithDeadline<T>(work: Promise<T>, options: { timeoutMs?: number; signal?: AbortSignal }, what: string): Promise<T> {
  const { timeoutMs, signal } = options;
  if (timeoutMs === undefined && signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            cleanup();
            reject(new StoreError('TIMEOUT', `${what} did not complete within ${timeoutMs} ms; it may still be applied`));
          }, timeoutMs);
    const onAbort = (): void => {
      cleanup();
      reject(signal?.reason);
    };
    const cleanup = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (err: unknown) => {
        cleanup();
        reject(err);
      },
    );
  });
}
