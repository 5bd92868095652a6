import test from 'ava';
import { request } from 'undici';
import { rawRequest, record, snapshot, startOrigin, startProxy, statusOf } from './helpers.js';

test('GET is forwarded with forwarding headers and Via', async (t) => {
  const origin = await startOrigin();
  const { proxy, port } = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const res = await request(`http://127.0.0.1:${port}/a?b=1`, { headers: { 'x-forwarded-for': '10.0.0.9' } });
  t.is(res.statusCode, 200);
  t.is(await res.body.text(), 'origin:GET /a?b=1');
  t.is(res.headers['via'], '1.1 weldr');
  const seen = origin.seen[0]!;
  t.is(seen.headers['x-forwarded-for'], '10.0.0.9, 127.0.0.1');
  t.is(seen.headers['x-forwarded-proto'], 'http');
  t.is(seen.headers['x-forwarded-host'], `127.0.0.1:${port}`);
  t.is(seen.headers['host'], `127.0.0.1:${port}`);
  t.is(seen.headers['via'], '1.1 weldr');
  t.is(proxy.stats().client.success, 1);
});

test('chunked request body reaches the origin de-chunked', async (t) => {
  const origin = await startOrigin();
  const { proxy, port } = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const r = await rawRequest(port, 'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  t.is(statusOf(r.text), 200);
  t.is(origin.seen[0]!.body, 'hello');
});
