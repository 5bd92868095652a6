// `weldr certs init`: a local CA and, for each member, a peer certificate (naming
// weldr://node/<id>, for --peer-cert) and an admin certificate (for --admin-cert), plus
// one admin client certificate (for --admin-client-ca). For `npm start`, drills and tests,
// and small clusters without a PKI of their own. An existing CA in the directory is
// reused, so members can be added later with the same command.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { makeDirectorySync } from '@weldr/store';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCa, issueCertificate, type KeyAndCert } from '@weldr/cluster';
import { ConfigError } from '../config/config-error.js';
import { rewordParseArgsError } from '../config/parse-args-error.js';
import { parseHostPort, parseInteger, parseNodeId, ValueError } from '../config/values.js';

export const CERTS_HELP = `Usage: weldr certs init --dir DIR --nodes ID,ID,... [options]

Makes a local certificate authority and certificates for a cluster:
  DIR/ca.pem, DIR/ca-key.pem                   the CA (reused if present; keep ca-key.pem private)
  DIR/<id>/peer.pem, DIR/<id>/peer-key.pem     --peer-cert/--peer-key of member <id> (names weldr://node/<id>)
  DIR/<id>/admin.pem, DIR/<id>/admin-key.pem   --admin-cert/--admin-key of member <id>
  DIR/admin-client.pem, DIR/admin-client-key.pem  a client certificate for --admin-client-ca
Every member uses DIR/ca.pem as --peer-ca (and --admin-client-ca, if client certificates are wanted).

Options:
  --dir DIR        where to write (created if missing)
  --nodes IDS      member ids, comma-separated
  --hosts HOSTS    host names and IP addresses the certificates are valid for
                   (default 127.0.0.1,::1,localhost)
  --days N         validity of the member certificates (default 365; the CA: 10 years)
  --force          replace existing member certificates (without it they are kept)
  -h, --help       show this help
`;

export function certsCommand(argv: readonly string[]): number {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    process.stdout.write(CERTS_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'init') throw new ConfigError(`unknown certs command "${sub}" (known: init)`);
  let parsed;
  try {
    parsed = parseArgs({
      args: [...rest],
      options: { dir: { type: 'string' }, nodes: { type: 'string' }, hosts: { type: 'string' }, days: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new ConfigError(rewordParseArgsError(err));
  }
  const v = parsed.values;
  if (v.help === true) {
    process.stdout.write(CERTS_HELP);
    return 0;
  }
  if (v.dir === undefined || v.dir.trim() === '') throw new ConfigError('--dir is required');
  if (v.nodes === undefined) throw new ConfigError('--nodes is required (e.g. --nodes n1,n2,n3)');
  const dir = v.dir;
  let nodes: string[];
  let hosts: string[];
  let days: number;
  try {
    nodes = v.nodes.split(',').map((id) => parseNodeId(id.trim()));
    hosts = (v.hosts ?? '127.0.0.1,::1,localhost').split(',').map((h) => h.trim()).filter((h) => h !== '');
    // The same host syntax as listener addresses (port 1 is only there to reuse the parser).
    for (const h of hosts) parseHostPort(h.includes(':') ? `[${h}]:1` : `${h}:1`);
    days = parseInteger(1, 3650)(v.days ?? '365');
  } catch (err) {
    if (err instanceof ValueError) throw new ConfigError(err.message);
    throw err;
  }
  if (new Set(nodes).size !== nodes.length) throw new ConfigError('--nodes names a member twice');

  makeDirectorySync(dir);
  const caPath = join(dir, 'ca.pem');
  const caKeyPath = join(dir, 'ca-key.pem');
  let ca: KeyAndCert;
  if (existsSync(caPath) && existsSync(caKeyPath)) {
    ca = { cert: readFileSync(caPath, 'utf8'), key: readFileSync(caKeyPath, 'utf8') };
    process.stdout.write(`using the CA in ${caPath}\n`);
  } else {
    ca = createCa({ commonName: 'weldr local CA' });
    writePair(caPath, caKeyPath, ca);
    process.stdout.write(`wrote ${caPath} (the CA; keep ${caKeyPath} private)\n`);
  }
  const notAfter = new Date(Date.now() + days * 86_400_000);
  for (const id of nodes) {
    const nodeDir = join(dir, id);
    const peerPath = join(nodeDir, 'peer.pem');
    // Run again (a container's init step on every start): existing members are kept.
    if (existsSync(peerPath) && v.force !== true) {
      process.stdout.write(`kept ${nodeDir} (exists; --force replaces it)\n`);
      continue;
    }
    makeDirectorySync(nodeDir);
    writePair(peerPath, join(nodeDir, 'peer-key.pem'), issueCertificate(ca, { commonName: id, nodeId: id, hosts, usage: 'both', notAfter }));
    writePair(join(nodeDir, 'admin.pem'), join(nodeDir, 'admin-key.pem'), issueCertificate(ca, { commonName: `${id} admin`, nodeId: id, hosts, usage: 'server', notAfter }));
    process.stdout.write(`wrote ${nodeDir}/{peer,admin}.pem and their keys for ${id}\n`);
  }
  const clientPath = join(dir, 'admin-client.pem');
  if (!existsSync(clientPath) || v.force === true) {
    writePair(clientPath, join(dir, 'admin-client-key.pem'), issueCertificate(ca, { commonName: 'weldr admin client', usage: 'client', notAfter }));
    process.stdout.write(`wrote ${clientPath} (an admin client certificate)\n`);
  }
  process.stdout.write(
    `\nstart member <id> with:\n  --peer-cert ${dir}/<id>/peer.pem --peer-key ${dir}/<id>/peer-key.pem --peer-ca ${caPath}\n  --admin-cert ${dir}/<id>/admin.pem --admin-key ${dir}/<id>/admin-key.pem\n`,
  );
  return 0;
}

function writePair(certPath: string, keyPath: string, pair: KeyAndCert): void {
  writeFileSync(certPath, pair.cert);
  writeFileSync(keyPath, pair.key, { mode: 0o600 });
  // An existing file keeps its mode on write: make sure a replaced key is private too.
  chmodSync(keyPath, 0o600);
}
