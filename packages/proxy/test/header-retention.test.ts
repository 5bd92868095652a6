// What a relayed response leaves behind on the origin connection. undici's parser
// collects a response head's fields in an array of Buffers (views of the socket's read
// chunk) and hands that array to the exchange; once the head is relayed the array must
// hold nothing, or — promoted to V8's old generation on an origin connection that waits
// long between requests, as every connection of a large pool does — it keeps those
// Buffers alive through young-generation collections (forward.ts, dropRaw;
// docs/benchmarks.md, "1,000 origins").
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import test from 'ava';
import { setup, type Teardown } from './helpers.js';

/** undici publishes the very array it then hands to the handler's onHeaders. */
function captureRawHeads(t: Teardown): unknown[][] {
  const seen: unknown[][] = [];
  const onMessage = (message: unknown): void => {
    const headers = (message as { response?: { headers?: unknown } }).response?.headers;
    if (Array.isArray(headers)) seen.push(headers);
  };
  diagnostics.subscribe('undici:request:headers', onMessage);
  t.teardown(() => {
    diagnostics.unsubscribe('undici:request:headers', onMessage);
  });
  return seen;
}

function get(port: number, path: string, agent: http.Agent): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

test('the raw header array of each relayed response is emptied, and the client still gets every field', async (t) => {
  const seen = captureRawHeads(t);
  // undici's own array (the native client's is emptied by the same dropRaw; its fields are strings, not views of a read chunk).
  const { p } = await setup(t, (req, res) => {
    const n = Number(req.url!.slice(1));
    res.setHeader('x-seq', String(n));
    res.setHeader('x-long', 'v'.repeat(100 + n));
    // A 204 is relayed with its head alone (completed in onHeaders).
    if (n === 2) {
      res.writeHead(204);
      res.end();
      return;
    }
    res.end(`body ${n}`);
  }, { originClient: 'undici' });
  // One kept-alive client connection and (so) one origin connection, reused.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  for (let n = 0; n < 4; n++) {
    const r = await get(p.port, `/${n}`, agent);
    t.is(r.status, n === 2 ? 204 : 200);
    t.is(r.headers['x-seq'], String(n));
    t.is(r.headers['x-long'], 'v'.repeat(100 + n));
    t.is(r.body, n === 2 ? '' : `body ${n}`);
  }
  t.is(seen.length, 4, 'one head per proxied response');
  for (const raw of seen) t.deepEqual(raw, [], 'no field Buffer left in the array undici handed over');
});
