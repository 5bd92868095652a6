import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { formatHostPort, type HostPort } from '../config/values.js';

/** A listener could not bind; the message names the listener and the address. */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

/** Turns a bind failure into a ListenError that names the listener and the address. */
export function listenError(err: NodeJS.ErrnoException, what: string, address: HostPort): ListenError {
  const reason =
    err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EADDRNOTAVAIL' ? 'address not available on this host' : err.message;
  return new ListenError(`cannot listen for ${what} on ${formatHostPort(address)}: ${reason}`, { cause: err });
}

/** Binds `server` to `address` and resolves with the bound port (which differs for port 0). */
export function listen(server: Server, address: HostPort, what: string): Promise<HostPort> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, what, address));
    server.once('error', onError);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', onError);
      resolve({ host: address.host, port: (server.address() as AddressInfo).port });
    });
  });
}

/** Stops accepting and resolves once every connection of `server` has closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}
