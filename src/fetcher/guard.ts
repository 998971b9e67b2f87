import ipaddr from 'ipaddr.js'

/**
 * The SSRF address guard. Every decision is made on a parsed address (ipaddr.js), never on the
 * text of a URL or host name, so that `2130706433`, `0177.0.0.1`, `::ffff:7f00:1` and
 * `127.0.0.1` are one and the same address to it.
 *
 * The rule: an address passes when an allow range holds it, or when it is ordinary public
 * unicast. Everything ipaddr.js puts in a special range (loopback, private, link-local, CGNAT,
 * multicast, broadcast, unspecified, reserved, unique-local, 6to4, Teredo, ...) is refused,
 * as are a few public addresses that are known cloud control endpoints.
 */

type Address = ipaddr.IPv4 | ipaddr.IPv6
type Cidr = [Address, number]

/**
 * The error every guard refusal carries; `code` is the contract's result error code. Its
 * message goes into the tenant's result, so for a name it does not say what the name resolved
 * to: the worker's DNS answers for internal names are the operator's, not the tenant's.
 * `address` keeps it for the operator's own use.
 */
export class BlockedAddressError extends Error {
  readonly code = 'BLOCKED_ADDRESS'
  constructor (readonly address: string, readonly host?: string) {
    super(host !== undefined && host !== address
      ? `${host} resolves to an address downloads may not reach (loopback, private, link-local or otherwise reserved)`
      : `${address} is an address downloads may not reach`)
    this.name = 'BlockedAddressError'
  }
}

export interface AddressGuard {
  /** True when a connection to this IP address (v4 or v6 text, zone id allowed) may be made. */
  check (address: string): boolean
  /** Throws {@link BlockedAddressError} unless `check(address)`; `host` only words the message. */
  assertAllowed (address: string, host?: string): void
}

/**
 * Parses a list of CIDR ranges, e.g. `["127.0.0.0/8", "::1/128"]` or the comma-separated text
 * `"127.0.0.0/8, ::1/128"`. Throws an Error that names the first bad item.
 */
export function parseCidrList (input: string | readonly string[]): Cidr[] {
  const items = typeof input === 'string' ? input.split(',') : input
  const out: Cidr[] = []
  for (const raw of items) {
    const item = raw.trim()
    if (item === '') continue
    // isValidCIDR first: parseCIDR's own error text does not say which item was wrong.
    if (!ipaddr.isValidCIDR(item)) {
      throw new Error(`not a CIDR range: ${JSON.stringify(item)} (expected e.g. 127.0.0.0/8 or ::1/128)`)
    }
    out.push(ipaddr.parseCIDR(item))
  }
  return out
}

// Public in ipaddr.js's eyes, but not somewhere a download should go.
const extraDenied: Cidr[] = parseCidrList([
  // Azure's WireServer: a host-platform endpoint reachable from every VM, next to IMDS.
  '168.63.129.16/32',
  // IPv4-compatible IPv6 (deprecated): ::7f00:1 is "::127.0.0.1" and ipaddr.js calls it unicast.
  '::/96',
  // Local-use NAT64 (RFC 8215): what the embedded IPv4 reaches is the operator's choice.
  '64:ff9b:1::/48'
])

// Well-known NAT64 prefix (RFC 6052): the packet goes to the embedded IPv4 address, so that is
// the address to judge. Refusing it outright would break IPv6-only hosts behind DNS64.
const nat64 = ipaddr.parseCIDR('64:ff9b::/96')

function inAny (addr: Address, ranges: readonly Cidr[]): boolean {
  return ranges.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits))
}

function embeddedIPv4 (addr: ipaddr.IPv6): ipaddr.IPv4 {
  const b = addr.toByteArray()
  return new ipaddr.IPv4(b.slice(12))
}

/** Creates a guard; `allowCidrs` opens ranges that would otherwise be refused (config's `FETCH_ALLOW_CIDRS`). */
export function createAddressGuard (allowCidrs: string | readonly string[] = []): AddressGuard {
  const allow = parseCidrList(allowCidrs)

  function judge (addr: Address): boolean {
    if (inAny(addr, allow)) return true
    if (addr instanceof ipaddr.IPv6) {
      // The forms that carry an IPv4 address the packets actually go to are judged as that
      // address, so that an allow range like 127.0.0.0/8 also opens ::ffff:127.0.0.1.
      if (addr.isIPv4MappedAddress()) return judge(addr.toIPv4Address())
      if (addr.match(nat64)) return judge(embeddedIPv4(addr))
    }
    if (inAny(addr, extraDenied)) return false
    return addr.range() === 'unicast'
  }

  function check (address: string): boolean {
    let addr: Address
    try {
      // Node's resolver and URL parser only hand us canonical forms, but ipaddr.parse would also
      // read inet_aton forms (0x7f.1) the same way the URL parser does.
      addr = ipaddr.parse(address)
    } catch {
      return false
    }
    return judge(addr)
  }

  return {
    check,
    assertAllowed (address, host) {
      if (!check(address)) throw new BlockedAddressError(address, host)
    }
  }
}
