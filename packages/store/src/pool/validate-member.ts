// Validation of everything that describes a cluster member: ids, addresses, the random
// identities (cluster id, incarnation) and the membership commands. Like the pool's
// validator, the output is canonical (IPs normalised, host names lower case, keys in a
// fixed order), so one intent is one log entry and one idempotency fingerprint.
import { parseIp } from './ip.js';
import type { AddMemberCommand, InitClusterCommand, MemberChangeCommand, UpdateMemberCommand } from './types.js';
import { booleanField, expectObject, fail, join, oneOf, own, rejectUnknown } from './validate-fields.js';

/** Member ids: the node id rule of `--id` (a DNS label with '.' and '_' allowed). */
export const MEMBER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** Cluster ids and incarnations: random, URL- and log-safe. */
const IDENTITY = /^[A-Za-z0-9_-]{1,64}$/;
// RFC 1123 host name, each label 1-63, at most 253 in all.
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const PORT = /^[1-9][0-9]{0,4}$/;

export function validateMemberId(value: unknown, field = 'id'): string {
  if (typeof value !== 'string' || !MEMBER_ID.test(value)) {
    fail(field, "must be a member id: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit");
  }
  return value;
}

export function validateIncarnation(value: unknown, field = 'incarnation'): string {
  if (typeof value !== 'string' || !IDENTITY.test(value)) fail(field, "must be 1-64 letters, digits, '_' or '-'");
  return value;
}

export function validateClusterId(value: unknown, field = 'clusterId'): string {
  return validateIncarnation(value, field);
}

/**
 * `host:port` as other hosts reach a member: an IP literal (IPv6 in brackets) or a DNS
 * name, and a port 1-65535. Returned canonical: IP per RFC 5952, name in lower case.
 * Wildcards (0.0.0.0, ::) are refused: nobody can connect to them.
 */
export function validateHostPort(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length > 262) fail(field, 'must be a string "host:port"');
  const bracketed = /^\[([^\]]+)\]:([^:]*)$/.exec(value);
  let host: string;
  let port: string;
  if (bracketed !== null) {
    host = bracketed[1]!;
    port = bracketed[2]!;
  } else {
    const colon = value.lastIndexOf(':');
    if (colon <= 0 || value.indexOf(':') !== colon) fail(field, `must be "host:port" (IPv6 as "[addr]:port"), got ${JSON.stringify(value)}`);
    host = value.slice(0, colon);
    port = value.slice(colon + 1);
  }
  if (!PORT.test(port) || Number(port) > 65_535) fail(field, `must end in a port between 1 and 65535, got ${JSON.stringify(value)}`);
  const lower = host.toLowerCase();
  if (bracketed === null && !/^[0-9.]+$/.test(lower) && HOSTNAME.test(lower)) return `${lower}:${port}`;
  const ip = parseIp(host);
  if (!ip.ok) fail(field, `has a host that is neither a reachable IP address nor a host name: ${ip.reason}`);
  if (ip.value.family === 6 && bracketed === null) fail(field, 'must write an IPv6 address in brackets: "[addr]:port"');
  if (ip.value.family === 4 && bracketed !== null) fail(field, 'must not put an IPv4 address in brackets');
  return ip.value.family === 6 ? `[${ip.value.ip}]:${port}` : `${ip.value.ip}:${port}`;
}

/** `host:port`, or the same after `http://` / `https://` (no path). */
export function validateAdminAddress(value: unknown, field = 'adminAddress'): string {
  if (typeof value !== 'string') fail(field, 'must be a string "host:port" or "http(s)://host:port"');
  const scheme = /^(https?):\/\//i.exec(value);
  if (scheme === null) return validateHostPort(value, field);
  const rest = value.slice(scheme[0].length).replace(/\/$/, '');
  return `${scheme[1]!.toLowerCase()}://${validateHostPort(rest, field)}`;
}

/** The URL a peer's admin API is reached at, from a record's adminAddress. */
export function adminUrlOf(adminAddress: string): string {
  return /^https?:\/\//.test(adminAddress) ? adminAddress : `http://${adminAddress}`;
}

const ADD_KEYS = ['type', 'id', 'raftAddress', 'adminAddress', 'proxyAddress', 'autoPromote', 'incarnation'] as const;

/** The context of a configuration change (AddMember, PromoteMember, RemoveMember). */
export function validateMemberChange(input: unknown, prefix = ''): MemberChangeCommand {
  const obj = expectObject(input, prefix);
  const type = oneOf(own(obj, 'type'), join(prefix, 'type'), ['AddMember', 'PromoteMember', 'RemoveMember'] as const);
  if (type !== 'AddMember') {
    rejectUnknown(obj, ['type', 'id'], prefix);
    return { type, id: validateMemberId(own(obj, 'id'), join(prefix, 'id')) };
  }
  rejectUnknown(obj, ADD_KEYS, prefix);
  const proxy = own(obj, 'proxyAddress');
  const incarnation = own(obj, 'incarnation');
  const autoPromote = own(obj, 'autoPromote');
  const command: AddMemberCommand = {
    type,
    id: validateMemberId(own(obj, 'id'), join(prefix, 'id')),
    raftAddress: validateHostPort(own(obj, 'raftAddress'), join(prefix, 'raftAddress')),
    adminAddress: validateAdminAddress(own(obj, 'adminAddress'), join(prefix, 'adminAddress')),
    ...(proxy === undefined ? {} : { proxyAddress: validateHostPort(proxy, join(prefix, 'proxyAddress')) }),
    autoPromote: autoPromote === undefined ? true : booleanField(autoPromote, join(prefix, 'autoPromote')),
    ...(incarnation === undefined ? {} : { incarnation: validateIncarnation(incarnation, join(prefix, 'incarnation')) }),
  };
  return command;
}

/** UpdateMember as validateCommand sees it (type already checked). */
export function validateUpdateMember(obj: Readonly<Record<string, unknown>>, prefix: string): UpdateMemberCommand {
  rejectUnknown(obj, ['type', 'id', 'raftAddress', 'adminAddress', 'proxyAddress', 'incarnation'], prefix);
  const raft = own(obj, 'raftAddress');
  const admin = own(obj, 'adminAddress');
  const proxy = own(obj, 'proxyAddress');
  const incarnation = own(obj, 'incarnation');
  return {
    type: 'UpdateMember',
    id: validateMemberId(own(obj, 'id'), join(prefix, 'id')),
    ...(raft === undefined ? {} : { raftAddress: validateHostPort(raft, join(prefix, 'raftAddress')) }),
    ...(admin === undefined ? {} : { adminAddress: validateAdminAddress(admin, join(prefix, 'adminAddress')) }),
    ...(proxy === undefined ? {} : { proxyAddress: validateHostPort(proxy, join(prefix, 'proxyAddress')) }),
    ...(incarnation === undefined ? {} : { incarnation: validateIncarnation(incarnation, join(prefix, 'incarnation')) }),
  };
}

export function validateInitCluster(obj: Readonly<Record<string, unknown>>, prefix: string): InitClusterCommand {
  rejectUnknown(obj, ['type', 'clusterId'], prefix);
  return { type: 'InitCluster', clusterId: validateClusterId(own(obj, 'clusterId'), join(prefix, 'clusterId')) };
}
