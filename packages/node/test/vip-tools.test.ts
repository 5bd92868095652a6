// The VIP's platform commands: flags per tool, and how their answers are read.
import test from 'ava';
import type { VipAddress } from '../src/config/vip-values.js';
import { alreadyPresent, announceArgs, announced, arpingVariant, ipAddArgs, ipDelArgs, notPresent } from '../src/runtime/vip-tools.js';

const v4: VipAddress = { address: '10.213.0.100', prefix: 24, family: 4 };
const v6: VipAddress = { address: 'fd00:213::100', prefix: 64, family: 6 };

test('the two arping programs are told apart by what they print', (t) => {
  t.is(arpingVariant('arping from iputils 20221126\nlibcap: yes, IDN: yes'), 'iputils');
  t.is(arpingVariant('ARPing 2.23, by Thomas Habets <thomas@habets.se>\nusage: arping [ -0aAbdDeFpPqrRuUvzZ ]'), 'habets');
  t.is(arpingVariant('arping: invalid option -- \'-\'\nUsage:\n  arping [options] <destination>\n\narping from iputils s20180629'), 'iputils');
  t.is(arpingVariant('busybox arping'), undefined);
});

test('each tool gets its own flags: -I for iputils, -i and -S for Habets, ndptool for IPv6', (t) => {
  t.deepEqual(announceArgs({ kind: 'iputils-arping', command: 'arping' }, v4, 'br0'), ['-q', '-U', '-c', '1', '-I', 'br0', '10.213.0.100']);
  t.deepEqual(announceArgs({ kind: 'habets-arping', command: 'arping' }, v4, 'br0'), ['-q', '-U', '-c', '1', '-w', '0', '-i', 'br0', '-S', '10.213.0.100', '10.213.0.100']);
  t.deepEqual(announceArgs({ kind: 'ndptool', command: 'ndptool' }, v6, 'br0'), ['-t', 'na', '-U', '-i', 'br0', '-T', 'fd00:213::100', 'send']);
  t.is(announceArgs({ kind: 'none', reason: 'x' }, v4, 'br0'), undefined);
});

test('ip addr add/del, with nodad for IPv6', (t) => {
  t.deepEqual(ipAddArgs(v4, 'eth0'), ['-4', 'addr', 'add', '10.213.0.100/24', 'dev', 'eth0']);
  t.deepEqual(ipAddArgs(v6, 'eth0'), ['-6', 'addr', 'add', 'fd00:213::100/64', 'dev', 'eth0', 'nodad']);
  t.deepEqual(ipDelArgs(v6, 'eth0'), ['-6', 'addr', 'del', 'fd00:213::100/64', 'dev', 'eth0']);
  t.true(alreadyPresent('RTNETLINK answers: File exists'));
  t.true(notPresent('RTNETLINK answers: Cannot assign requested address'));
  t.true(notPresent('Error: ipv4: Address not found.'));
  t.false(notPresent('Cannot find device "eth9"'));
});

test("an announcement went out: exit 0, or Habets' exit 1 (no reply) with nothing on stderr", (t) => {
  t.true(announced({ kind: 'iputils-arping', command: 'arping' }, 0, ''));
  t.false(announced({ kind: 'iputils-arping', command: 'arping' }, 2, 'arping: bind: Cannot assign requested address'));
  t.true(announced({ kind: 'habets-arping', command: 'arping' }, 1, ''));
  t.false(announced({ kind: 'habets-arping', command: 'arping' }, 1, 'arping: libnet_init(LIBNET_LINK, nosuch): No such device'));
  t.false(announced({ kind: 'ndptool', command: 'ndptool' }, 1, 'Interface "nosuch" does not exist'));
});
