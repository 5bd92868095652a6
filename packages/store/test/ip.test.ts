import test from 'ava';
import { parseIp } from '../src/index.js';

const canonical: ReadonlyArray<readonly [input: string, expected: string, family: 4 | 6]> = [
  ['127.0.0.1', '127.0.0.1', 4],
  ['10.0.0.255', '10.0.0.255', 4],
  ['1.0.0.0', '1.0.0.0', 4],
  ['::1', '::1', 6],
  ['[::1]', '::1', 6],
  ['0:0:0:0:0:0:0:1', '::1', 6],
  ['0000:0000:0000:0000:0000:0000:0000:0001', '::1', 6],
  ['2001:DB8::1', '2001:db8::1', 6],
  ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1', 6],
  // RFC 5952 §4.2.3: the longest run is compressed; the first on a tie.
  ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', 6],
  ['1:0:0:2:0:0:0:3', '1:0:0:2::3', 6],
  // §4.2.2: a single zero group is not compressed.
  ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', 6],
  ['1::2:3:4:5:6:7', '1:0:2:3:4:5:6:7', 6],
  ['fe80::', 'fe80::', 6],
  ['[FE80::AbCd]', 'fe80::abcd', 6],
  // §5: IPv4-mapped keeps the dotted tail, whichever way it was written.
  ['::ffff:1.2.3.4', '::ffff:1.2.3.4', 6],
  ['::FFFF:0102:0304', '::ffff:1.2.3.4', 6],
  ['64:ff9b::192.0.2.33', '64:ff9b::c000:221', 6],
];

for (const [input, expected, family] of canonical) {
  test(`parseIp accepts ${input} as ${expected}`, (t) => {
    t.deepEqual(parseIp(input), { ok: true, value: { ip: expected, family } });
  });
}

const rejected: ReadonlyArray<readonly [input: string, reason: RegExp]> = [
  ['', /empty/],
  ['localhost', /hostnames/],
  ['example.com', /hostnames/],
  ['1.2.3', /address literal/],
  ['1.2.3.4.5', /address literal/],
  ['256.0.0.1', /address literal/],
  ['01.2.3.4', /leading zeros/], // octal ambiguity
  ['1.2.3.04', /leading zeros/],
  ['010.0.0.1', /leading zeros/],
  ['1.2.3.-1', /address literal/],
  [' 1.2.3.4', /address literal/],
  ['1.2.3.4 ', /address literal/],
  ['[1.2.3.4]', /address literal/],
  ['1.2.3.4:80', /address literal/],
  ['0x7f.0.0.1', /address literal/],
  ['2130706433', /address literal/],
  ['fe80::1%eth0', /zone/],
  ['[fe80::1%25eth0]', /zone/],
  // A '%' after something that is not an IPv6 address is not a zone id (e.g. a broken URL escape).
  ['%ZZ', /address literal/],
  ['example%eth0', /address literal/],
  ['1.2.3.4%eth0', /address literal/],
  [':::1', /address literal/],
  ['1::2::3', /address literal/],
  ['1:2:3:4:5:6:7:8:9', /address literal/],
  ['1:2:3:4:5:6:7', /address literal/],
  ['1:2:3:4:5:6:7:8::', /address literal/],
  ['12345::1', /address literal/],
  ['g::1', /address literal/],
  ['[::1', /address literal/],
  ['::1]', /address literal/],
  ['::1.2.3.4:5', /address literal/],
  ['x'.repeat(100), /address literal/],
  ['0.0.0.0', /0\.0\.0\.0\/8/],
  ['0.1.2.3', /0\.0\.0\.0\/8/],
  ['224.0.0.1', /multicast/],
  ['239.255.255.255', /multicast/],
  ['255.255.255.255', /broadcast/],
  ['::', /unspecified/],
  ['ff02::1', /multicast/],
  ['::ffff:0.0.0.0', /0\.0\.0\.0\/8/],
];

for (const [input, reason] of rejected) {
  test(`parseIp rejects ${JSON.stringify(input.length > 20 ? `${input.slice(0, 20)}…` : input)}`, (t) => {
    const result = parseIp(input);
    t.false(result.ok);
    if (!result.ok) t.regex(result.reason, reason);
  });
}

test('IPv6 canonical form matches the WHATWG URL serializer on random addresses', (t) => {
  // Independent oracle for RFC 5952 compression: URL hosts are serialised the same way
  // (except IPv4-mapped, which URL prints in hex, so those are excluded).
  let seed = 42;
  const next = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed;
  };
  for (let i = 0; i < 2_000; i++) {
    // Mostly zero groups, so compression cases are frequent.
    const groups = Array.from({ length: 8 }, () => (next() % 3 === 0 ? (next() % 0x10000).toString(16) : '0'));
    if (groups.every((g) => g === '0') || groups[0]?.startsWith('ff')) continue;
    const text = groups.join(':');
    const parsed = parseIp(text);
    const oracle = new URL(`http://[${text}]/`).hostname.slice(1, -1);
    if (oracle.startsWith('::ffff:') && groups.slice(0, 5).every((g) => g === '0')) continue;
    t.deepEqual(parsed, { ok: true, value: { ip: oracle, family: 6 } }, text);
  }
});
