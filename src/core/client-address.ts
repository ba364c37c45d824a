import { BlockList, isIP, SocketAddress } from 'node:net';

/** Proxies whose `X-Forwarded-For` entries we believe; build with `parseTrustedProxies`. */
export interface TrustedProxies {
  /** Normalised entries as configured, for logs and diagnostics. */
  readonly entries: readonly string[];
  readonly list: BlockList;
}

const IPV4_MAPPED_PREFIX = '::ffff:';

/**
 * Parses a comma-separated list of IPv4/IPv6 addresses and CIDR ranges, e.g.
 * '127.0.0.1, 10.0.0.0/8, ::1'. An empty or blank spec trusts no proxy.
 */
export function parseTrustedProxies(spec: string): TrustedProxies {
  const list = new BlockList();
  const entries: string[] = [];
  for (const raw of spec.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    entries.push(addEntry(list, entry));
  }
  return Object.freeze({ entries: Object.freeze(entries), list });
}

/**
 * The address to throttle a request by. Without trusted proxies it is always the socket peer, so
 * forwarding headers cannot rotate the key. Behind trusted proxies it is the nearest untrusted hop
 * in `X-Forwarded-For`, read from the right, where each trusted proxy appended its own peer.
 */
export function clientAddress(
  socketAddress: string | undefined,
  forwardedFor: string | undefined,
  trusted: TrustedProxies,
): string {
  const peer = socketAddress === undefined ? undefined : normaliseAddress(socketAddress);
  if (peer === undefined) return 'unknown';
  if (forwardedFor === undefined || !isTrusted(trusted, peer)) return peer;
  return nearestUntrustedHop(forwardedFor, trusted) ?? peer;
}

/**
 * Walks the hops right to left. An unreadable hop ends the walk: everything to its left came
 * through a hop we cannot check, so it may be forged. When no untrusted hop is found (the header is
 * missing, garbled or all trusted) the caller falls back to the socket peer rather than the leftmost
 * entry, so a client inside a trusted range cannot rotate its key through the header either.
 */
function nearestUntrustedHop(forwardedFor: string, trusted: TrustedProxies): string | undefined {
  const hops = forwardedFor.split(',').map((hop) => hop.trim());
  for (let index = hops.length - 1; index >= 0; index--) {
    const hop = hops[index];
    // Empty elements come from joined duplicate headers or a trailing comma, not from a proxy.
    if (hop === undefined || hop === '') continue;
    const address = normaliseAddress(stripPort(hop));
    if (address === undefined) return undefined;
    if (!isTrusted(trusted, address)) return address;
  }
  return undefined;
}

/**
 * The key that throttling counts a client under. An IPv6 host usually holds a whole /64 and can
 * pick a new address per request, so IPv6 clients count per /64; IPv4 addresses count alone.
 */
export function throttlingKey(address: string): string {
  if (isIP(address) !== 6) return address;
  const hextets = expandIpv6(address);
  return hextets ? `${hextets.slice(0, 4).join(':')}::/64` : address;
}

function expandIpv6(address: string): string[] | undefined {
  const [head = '', tail, ...rest] = address.split('::');
  if (rest.length > 0 || address.includes('.')) return undefined;
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  const all = [...left, ...new Array<string>(missing).fill('0'), ...right];
  return all.length === 8 ? all.map((part) => part.replace(/^0+(?=.)/, '')) : undefined;
}

function isTrusted(trusted: TrustedProxies, address: string): boolean {
  return trusted.list.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6');
}

function addEntry(list: BlockList, entry: string): string {
  const [text = '', prefixText, ...extra] = entry.split('/');
  const address = normaliseAddress(text);
  if (address === undefined || extra.length > 0) throw badEntry(entry, 'not an IP address');
  const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
  if (prefixText === undefined) {
    list.addAddress(address, family);
    return address;
  }
  // An IPv4-mapped range would need its prefix shifted by 96 bits; asking for IPv4 is clearer.
  if (isIP(text) !== isIP(address)) throw badEntry(entry, 'write IPv4 ranges in IPv4 notation');
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = parsePrefix(prefixText, max);
  if (prefix === undefined) throw badEntry(entry, `prefix length must be 0-${max}`);
  list.addSubnet(address, prefix, family);
  return `${address}/${prefix}`;
}

function parsePrefix(text: string, max: number): number | undefined {
  if (!/^\d{1,3}$/.test(text)) return undefined;
  const prefix = Number(text);
  return prefix <= max ? prefix : undefined;
}

function badEntry(entry: string, reason: string): TypeError {
  return new TypeError(`Invalid trusted proxy "${entry}": ${reason} (expected an IP address or CIDR range)`);
}

/**
 * Canonical text for an address, or undefined when it is not one. IPv6 is compressed and lower-cased
 * and IPv4-mapped IPv6 becomes IPv4, so one host always yields one throttling key.
 */
function normaliseAddress(text: string): string | undefined {
  const family = isIP(text);
  if (family === 4) return text;
  if (family !== 6) return undefined;
  let canonical: string;
  try {
    canonical = new SocketAddress({ address: text, family: 'ipv6' }).address;
  } catch {
    return undefined;
  }
  const mapped = canonical.startsWith(IPV4_MAPPED_PREFIX) ? canonical.slice(IPV4_MAPPED_PREFIX.length) : '';
  return isIP(mapped) === 4 ? mapped : canonical;
}

// Some proxies (Azure, IIS) append the client port: '203.0.113.7:51234' or '[2001:db8::1]:443'.
function stripPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(hop);
  if (bracketed?.[1] !== undefined) return bracketed[1];
  const withPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(hop);
  return withPort?.[1] ?? hop;
}
