// The loopback addresses of the benchmark's many origins: 127.1.0.1, 127.1.0.2, … (the
// whole of 127.0.0.0/8 is local on Linux; nothing else binds 127.1.x.y). The last byte
// is never 0 or 255.
export function originAddress(i) {
  return `127.1.${Math.floor(i / 254)}.${(i % 254) + 1}`;
}
