// The request filter tested directly: node's parser (llhttp, strict) refuses most
// ambiguous framing before a request exists, so these checks — the second line of
// defence against smuggling — are never reached from a socket. Each case is a request
// as node would hand it over, with the raw header list the filter reads.
import type { IncomingMessage } from 'node:http';
import test from 'ava';
import { filterRequest, LOCAL_OPTIONS, MAX_HEADER_FIELDS, type RequestTarget } from '../src/request-filter.js';

const VIA = '1.1 weldr (weldr/abcd1234)';

function req(method: string, url: string, rawHeaders: string[], version = '1.1'): IncomingMessage {
  const [major, minor] = version.split('.').map(Number) as [number, number];
  return { method, url, rawHeaders, httpVersionMajor: major, httpVersionMinor: minor } as unknown as IncomingMessage;
}

function target(): RequestTarget {
  return { host: '', path: '', hasBody: false, maxForwards: null, via: VIA };
}

function verdict(method: string, url: string, rawHeaders: string[], version?: string): { verdict: ReturnType<typeof filterRequest>; out: RequestTarget } {
  const out = target();
  return { verdict: filterRequest(req(method, url, rawHeaders, version), out), out };
}

test('framing: Content-Length with Transfer-Encoding is refused in either order', (t) => {
  t.is(verdict('POST', '/', ['Host', 'a', 'Content-Length', '5', 'Transfer-Encoding', 'chunked']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'transfer-encoding', 'chunked', 'content-length', '5']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Content-Length', '0', 'Transfer-Encoding', 'chunked']).verdict, 'BAD_REQUEST');
});

test('framing: repeated, listed or non-numeric Content-Length is refused, even when the values agree', (t) => {
  t.is(verdict('POST', '/', ['Host', 'a', 'Content-Length', '5', 'Content-Length', '5']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Content-Length', '5', 'Content-Length', '6']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Content-Length', '5, 5']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Content-Length', '+5']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Content-Length', '-1']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Content-Length', '']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Content-Length', '0x10']).verdict, 'BAD_REQUEST');
});

test('framing: Transfer-Encoding must end in a single chunked; other codings are not implemented', (t) => {
  t.is(verdict('POST', '/', ['Host', 'a', 'Transfer-Encoding', 'chunked, identity']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Transfer-Encoding', 'chunked, chunked']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Transfer-Encoding', 'gzip']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Transfer-Encoding', ' , chunked']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Transfer-Encoding', 'chunked', 'Transfer-Encoding', '']).verdict, 'BAD_REQUEST');
  t.is(verdict('POST', '/', ['Host', 'a', 'Transfer-Encoding', 'gzip, chunked']).verdict, 'NOT_IMPLEMENTED');
  t.is(verdict('POST', '/', ['Host', 'a', 'Transfer-Encoding', 'gzip', 'Transfer-Encoding', 'chunked']).verdict, 'NOT_IMPLEMENTED');
  // HTTP/1.0 has no Transfer-Encoding: the framing cannot be trusted (RFC 9112 §6.1).
  t.is(verdict('POST', '/', ['Transfer-Encoding', 'chunked'], '1.0').verdict, 'BAD_REQUEST');
});

test('framing: which requests have a body', (t) => {
  const body = (headers: string[]): boolean | null => {
    const r = verdict('POST', '/', ['Host', 'a', ...headers]);
    return r.verdict === null ? r.out.hasBody : null;
  };
  t.is(body(['Transfer-Encoding', 'chunked']), true);
  t.is(body(['Transfer-Encoding', ' Chunked ']), true);
  t.is(body(['Content-Length', '10']), true);
  t.is(body(['Content-Length', '0']), false);
  t.is(body(['Content-Length', '000']), false);
  t.is(body([]), false);
});

test('Host: exactly one in HTTP/1.1, well-formed, no userinfo; optional in HTTP/1.0', (t) => {
  t.is(verdict('GET', '/', []).verdict, 'BAD_REQUEST');
  t.is(verdict('GET', '/', ['Host', 'a', 'host', 'b']).verdict, 'BAD_REQUEST');
  t.is(verdict('GET', '/', ['Host', 'user@a']).verdict, 'BAD_REQUEST');
  t.is(verdict('GET', '/', ['Host', 'a b']).verdict, 'BAD_REQUEST');
  t.is(verdict('GET', '/', [], '1.0').verdict, null);
  // RFC 9110 §4.2.1: an http URI with an empty host is invalid. ":80" was taken for an
  // authority and forwarded as Host (found by probing).
  t.is(verdict('GET', '/', ['Host', ':80']).verdict, 'BAD_REQUEST');
  t.is(verdict('GET', '/', ['Host', ':']).verdict, 'BAD_REQUEST');
  // An empty Host field names no authority: allowed (RFC 9112 §3.2), forwarded as it is.
  t.is(verdict('GET', '/', ['Host', '']).verdict, null);
  const ok = verdict('GET', '/x?y', ['Host', '[::1]:8080']);
  t.is(ok.verdict, null);
  t.is(ok.out.host, '[::1]:8080');
  t.is(ok.out.path, '/x?y');
});

test('request targets: absolute-form replaces Host, asterisk-form only for OPTIONS, no fragments', (t) => {
  const abs = verdict('GET', 'http://example.test:81?q', ['Host', 'ignored']);
  t.is(abs.verdict, null);
  t.is(abs.out.host, 'example.test:81');
  t.is(abs.out.path, '/?q');
  t.is(verdict('GET', 'http:///nohost', ['Host', 'a']).verdict, 'BAD_REQUEST');
  t.is(verdict('GET', 'http://:80/nohost', ['Host', 'a']).verdict, 'BAD_REQUEST');
  t.is(verdict('GET', 'ftp://a/', ['Host', 'a']).verdict, 'BAD_REQUEST');
  t.is(verdict('GET', '*', ['Host', 'a']).verdict, 'BAD_REQUEST');
  t.is(verdict('OPTIONS', '*', ['Host', 'a']).verdict, LOCAL_OPTIONS);
  t.is(verdict('GET', '/a#b', ['Host', 'a']).verdict, 'BAD_REQUEST');
});

test('methods and versions: TRACE 405, CONNECT 501, a major version other than 1 is 505', (t) => {
  t.is(verdict('TRACE', '/', ['Host', 'a']).verdict, 'METHOD_NOT_ALLOWED');
  t.is(verdict('CONNECT', 'a:443', ['Host', 'a']).verdict, 'NOT_IMPLEMENTED');
  t.is(verdict('GET', '/', ['Host', 'a'], '2.0').verdict, 'VERSION_NOT_SUPPORTED');
});

test('Max-Forwards on OPTIONS: 0 is answered here, others decremented, garbage refused; other methods untouched', (t) => {
  t.is(verdict('OPTIONS', '/', ['Host', 'a', 'Max-Forwards', '0']).verdict, LOCAL_OPTIONS);
  const three = verdict('OPTIONS', '/', ['Host', 'a', 'Max-Forwards', ' 3 ']);
  t.is(three.verdict, null);
  t.is(three.out.maxForwards, '2');
  t.is(verdict('OPTIONS', '/', ['Host', 'a', 'Max-Forwards', 'x']).verdict, 'BAD_REQUEST');
  // RFC 9110 §7.6.2: the lesser of the value decremented and the proxy's maximum. A value
  // beyond 2^53 was forwarded as "1e+23" (found by probing), which is no Max-Forwards.
  const huge = verdict('OPTIONS', '/', ['Host', 'a', 'Max-Forwards', '99999999999999999999999']);
  t.is(huge.verdict, null);
  t.regex(huge.out.maxForwards!, /^[0-9]+$/);
  t.is(huge.out.maxForwards, String(2 ** 31 - 2));
  t.is(verdict('OPTIONS', '/', ['Host', 'a', 'Max-Forwards', '0000000000000000000000']).verdict, LOCAL_OPTIONS);
  // Max-Forwards is a single number: two fields were resolved by taking the last one.
  t.is(verdict('OPTIONS', '/', ['Host', 'a', 'Max-Forwards', '3', 'Max-Forwards', '0']).verdict, 'BAD_REQUEST');
  t.is(verdict('OPTIONS', '/', ['Host', 'a', 'Max-Forwards', '3, 3']).verdict, 'BAD_REQUEST');
  const get = verdict('GET', '/', ['Host', 'a', 'Max-Forwards', '0']);
  t.is(get.verdict, null);
  t.is(get.out.maxForwards, null);
});

test('a request carrying this proxy\'s own Via entry went round a loop: 508', (t) => {
  t.is(verdict('GET', '/', ['Host', 'a', 'Via', `1.0 other, ${VIA}`]).verdict, 'LOOP_DETECTED');
  t.is(verdict('GET', '/', ['Host', 'a', 'Via', '1.1 weldr (weldr/00000000)']).verdict, null, 'another weldr with the same node id is not a loop');
});

test('a request with as many header fields as node keeps is refused (the rest were dropped)', (t) => {
  const raw: string[] = ['Host', 'a'];
  while (raw.length < 2 * MAX_HEADER_FIELDS) raw.push('X-F', '1');
  t.is(verdict('GET', '/', raw).verdict, 'HEADERS_TOO_LARGE');
  t.is(verdict('GET', '/', raw.slice(0, -2)).verdict, null);
});
