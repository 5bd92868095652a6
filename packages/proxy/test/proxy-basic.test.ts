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
  t.regex(String(res.headers['via']), /^1\.1 weldr \(weldr\/[0-9a-f]{8}\)$/);
  const seen = origin.seen[0]!;
  t.is(seen.headers['x-forwarded-for'], '10.0.0.9, 127.0.0.1');
  t.is(seen.headers['x-forwarded-proto'], 'http');
  t.is(seen.headers['x-forwarded-host'], `127.0.0.1:${port}`);
  t.is(seen.headers['host'], `127.0.0.1:${port}`);
  t.is(seen.headers['via'], String(res.headers['via']));
  t.is(proxy.stats().client.success, 1);
});

test('a request that already went through this proxy (its own Via entry) is a 508 loop, and reaches no origin', async (t) => {
  const origin = await startOrigin();
  const { proxy, port } = await startProxy(snapshot([record(origin.port)]));
  const other = await startProxy(snapshot([record(origin.port)]));
  t.teardown(async () => {
    await proxy.close({ deadlineMs: 100 });
    await other.proxy.close({ deadlineMs: 100 });
    await origin.close();
  });
  const first = await request(`http://127.0.0.1:${port}/`);
  await first.body.text();
  const own = String(first.headers['via']);
  const looped = await request(`http://127.0.0.1:${port}/`, { headers: { via: `1.0 edge, ${own}` } });
  t.is(looped.statusCode, 508);
  t.is(looped.headers['x-weldr-error'], 'LOOP_DETECTED');
  await looped.body.text();
  t.is(origin.seen.length, 1, 'the looped request reached no origin');
  // Another weldr with the same node name is not this proxy: forwarded.
  const fromOther = await request(`http://127.0.0.1:${other.port}/`);
  await fromOther.body.text();
  const viaOther = String(fromOther.headers['via']);
  t.not(viaOther, own);
  const chained = await request(`http://127.0.0.1:${port}/`, { headers: { via: viaOther } });
  t.is(chained.statusCode, 200);
  await chained.body.text();
  t.is(origin.seen.at(-1)!.headers['via'], `${viaOther}, ${own}`);
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
