// The safety net that censors credentials in log lines: a token that is set shows as
// "[redacted]"; one that is not set is left out (a node without a token used to log
// "adminToken":"[redacted]", as if it had one), and the starting line's `sources` map
// keeps where each setting came from.
import { Writable } from 'node:stream';
import test from 'ava';
import { pino } from 'pino';
import { loggerOptions } from '../src/runtime/logger.js';

function logged(fields: Record<string, unknown>): Record<string, unknown> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const log = pino(loggerOptions('n1', 'info'), sink);
  log.info(fields, 'weldr starting');
  // pino writes synchronously to a plain stream
  return JSON.parse(lines.join('')) as Record<string, unknown>;
}

test('a token that is set is redacted wherever it turns up', (t) => {
  const line = logged({ event: 'starting', config: { adminToken: 'a-very-secret-token-1', clusterToken: 'another-secret-token-2' }, token: 'x', headers: { authorization: 'Bearer y' } });
  t.deepEqual(line['config'], { adminToken: '[redacted]', clusterToken: '[redacted]' });
  t.is(line['token'], '[redacted]');
  t.deepEqual(line['headers'], { authorization: '[redacted]' });
});

test('a token that is not set is left out, not shown as "[redacted]"', (t) => {
  const line = logged({ event: 'starting', config: { admin: '127.0.0.1:8687', adminToken: undefined, clusterToken: undefined } });
  t.deepEqual(line['config'], { admin: '127.0.0.1:8687' });
});

test("the starting line's sources say where a token came from; a value that is not a source is still censored", (t) => {
  const line = logged({ event: 'starting', sources: { adminToken: 'env', clusterToken: 'default', listen: 'flag' } });
  t.deepEqual(line['sources'], { adminToken: 'env', clusterToken: 'default', listen: 'flag' });
  const odd = logged({ sources: { adminToken: 'a-very-secret-token-1' }, config: { clusterToken: 'env-but-longer-0123' } });
  t.deepEqual(odd['sources'], { adminToken: '[redacted]' });
  t.deepEqual(odd['config'], { clusterToken: '[redacted]' });
});
