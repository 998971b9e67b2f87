import t from 'tap'
import { BlockedAddressError, createAddressGuard, parseCidrList } from '../../src/fetcher/guard.js'

const blocked = [
  // IPv4 special ranges
  '127.0.0.1', '127.255.255.254', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1',
  '169.254.169.254', '169.254.0.1', '100.64.0.1', '100.100.100.200', '100.127.255.255',
  '0.0.0.0', '0.1.2.3', '255.255.255.255', '224.0.0.1', '239.255.255.250',
  '240.0.0.1', '192.0.0.192', '192.0.2.1', '198.18.0.1', '198.51.100.1', '203.0.113.1',
  '168.63.129.16',
  // inet_aton spellings ipaddr.js reads as the URL parser does
  '2130706433', '0177.0.0.1', '0x7f.0.0.1', '0x7f000001', '127.1',
  // IPv6
  '::1', '::', 'fe80::1', 'fe80::1%eth0', 'fd00:ec2::254', 'fc00::1', 'ff02::1', 'fec0::1',
  '2001:db8::1', '100::1',
  // IPv4-mapped and other embedding forms
  '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '::ffff:10.0.0.1', '::ffff:0.0.0.0',
  '::ffff:0:7f00:1', '::7f00:1', '::127.0.0.1',
  '64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b:1::808:808',
  '2002:7f00:1::1', '2002:808:808::1', '2001:0:4136:e378:8000:63bf:3fff:fdd2',
  // not addresses at all
  '', 'localhost', 'example.org', '1.2.3.4.5', '::g', '[::1]'
]

const allowed = [
  '8.8.8.8', '1.1.1.1', '93.184.215.14', '100.63.255.255', '100.128.0.0', '172.32.0.1', '169.253.255.255',
  '2606:4700:4700::1111', '2a00:1450:4001:82b::200e',
  '::ffff:8.8.8.8', '::ffff:808:808', '64:ff9b::808:808'
]

t.test('refuses every non-public form with no allow list', async (t) => {
  const guard = createAddressGuard([])
  for (const a of blocked) t.equal(guard.check(a), false, `refuses ${JSON.stringify(a)}`)
  for (const a of allowed) t.equal(guard.check(a), true, `passes ${a}`)
})

t.test('allow ranges open exactly what they name, in any spelling', async (t) => {
  const guard = createAddressGuard(['127.0.0.0/8', '::1/128'])
  for (const a of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '2130706433', '64:ff9b::7f00:1']) {
    t.equal(guard.check(a), true, `passes ${a}`)
  }
  for (const a of ['0.0.0.0', '::', '10.0.0.1', '169.254.169.254', '100.100.100.200', 'fd00:ec2::254', '224.0.0.1', '::2']) {
    t.equal(guard.check(a), false, `still refuses ${a}`)
  }

  const narrow = createAddressGuard('127.0.0.1/32')
  t.equal(narrow.check('127.0.0.1'), true)
  t.equal(narrow.check('127.0.0.2'), false)
  t.equal(narrow.check('::1'), false, 'an IPv4 range does not open IPv6 loopback')

  const mapped = createAddressGuard(['::ffff:10.0.0.0/104'])
  t.equal(mapped.check('::ffff:10.1.2.3'), true, 'an IPv6 range opens the mapped form it names')
})

t.test('assertAllowed throws a BlockedAddressError with the contract code', async (t) => {
  const guard = createAddressGuard([])
  t.doesNotThrow(() => guard.assertAllowed('8.8.8.8'))
  const err = t.throws(() => guard.assertAllowed('169.254.169.254', 'metadata.example'))
  t.ok(err instanceof BlockedAddressError)
  t.match(err, { code: 'BLOCKED_ADDRESS', address: '169.254.169.254', message: /^metadata\.example resolves to an address downloads may not reach/ })
  t.notMatch((err as Error).message, /169\.254/, 'the message does not tell what the name resolved to')
  t.match(t.throws(() => guard.assertAllowed('10.1.2.3')), { message: /^10\.1\.2\.3 is an address downloads may not reach/ }, 'an address given as such is named')
})

t.test('parseCidrList reads lists and names the bad item', async (t) => {
  t.equal(parseCidrList('').length, 0)
  t.equal(parseCidrList(' 127.0.0.0/8 , ::1/128 ,').length, 2)
  t.equal(parseCidrList(['10.0.0.0/8']).length, 1)
  t.throws(() => parseCidrList('127.0.0.0/8,nonsense'), /not a CIDR range: "nonsense"/)
  t.throws(() => parseCidrList(['127.0.0.1']), /not a CIDR range: "127\.0\.0\.1"/, 'a bare address is not a range')
  t.throws(() => parseCidrList(['10.0.0.0/33']), /not a CIDR range/)
  t.throws(() => createAddressGuard(['::1/129']), /not a CIDR range: "::1\/129"/)
})
