/**
 * The canonical id of a server: "ip:port" for IPv4, "[ip]:port" for IPv6 (brackets keep
 * the port separable, as in URLs). `ip` must already be canonical (see parseIp).
 */
export function serverId(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
