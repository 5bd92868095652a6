// Runs one weldr proxy in front of one origin for the local benchmark.
// usage: node --import=tsx --conditions=@weldr/source weldr-server.ts <listenPort> <originPort> [<originPort>…]
import { Registry } from 'prom-client';
import { DEFAULT_SETTINGS } from '@weldr/store';
import { createProxy } from '../src/index.js';

const [listenPort, ...originPorts] = process.argv.slice(2).map(Number);
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const proxy = createProxy({
  snapshot: {
    index: 1,
    settings: DEFAULT_SETTINGS,
    servers: originPorts.map((port, i) => ({
      id: `127.0.0.1:${port}`,
      ip: '127.0.0.1',
      port: port!,
      weight: 1,
      healthCheck: {},
      draining: false,
      createdIndex: i + 1,
      updatedIndex: i + 1,
    })),
  },
  log: silent,
  metrics: new Registry(), // everything stays on while measuring
});
await proxy.listen(listenPort!, '127.0.0.1');
process.send?.('ready');
process.on('SIGTERM', () => void proxy.close({ deadlineMs: 100 }).then(() => process.exit(0)));
