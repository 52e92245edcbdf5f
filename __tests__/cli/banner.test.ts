/**
 * What `roomcast serve` prints at start-up, and this machine's addresses behind it, on made-up
 * machines: no sockets, the interfaces are fixtures in os.networkInterfaces()'s shape.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { describeListening, explainListenError } from '../../src/cli/banner.js';
import { addressesServedBy, isOwnAddress, localAddresses, type InterfaceMap } from '../../src/lan/interfaces.js';
import type { Listening } from '../../src/server.js';

function v4(address: string, cidr: number, internal = false): NetworkInterfaceInfo {
  return { address, netmask: '', family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: `${address}/${cidr}` };
}

function v6(address: string, scopeid: number, internal = false): NetworkInterfaceInfo {
  return { address, netmask: '', family: 'IPv6', mac: '00:00:00:00:00:00', internal, cidr: `${address}/64`, scopeid };
}

const LO = [v4('127.0.0.1', 8, true), v6('::1', 0, true)];

/** A laptop: wired IPv4 + IPv6 (link-local listed first, as Linux may), and an IPv6-only VPN. */
const LAPTOP: InterfaceMap = {
  lo: LO,
  eth0: [v6('fe80::1', 2), v6('fd00::20', 0), v4('192.168.1.20', 24)],
  wg0: [v6('2001:db8::5', 0), v6('fe80::2', 3)],
};

const OFFLINE: InterfaceMap = { lo: LO };

const listen = (...addresses: string[]): Listening[] =>
  addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4, port: 7447 }));

describe('this machine\'s addresses', () => {
  test('in interface order, IPv4 first, link-local last and with its zone', () => {
    expect(localAddresses(LAPTOP).map((a) => `${a.interface} ${a.address}${a.loopback ? ' loopback' : ''}${a.linkLocal ? ' link-local' : ''}`)).toEqual([
      'lo 127.0.0.1 loopback',
      'lo ::1 loopback',
      'eth0 192.168.1.20',
      'eth0 fd00::20',
      'eth0 fe80::1%eth0 link-local',
      'wg0 2001:db8::5',
      'wg0 fe80::2%wg0 link-local',
    ]);
  });

  test('0.0.0.0 serves the IPv4 LAN addresses, :: all of them', () => {
    const here = localAddresses(LAPTOP);
    expect(addressesServedBy('0.0.0.0', here).map((a) => a.address)).toEqual(['192.168.1.20']);
    expect(addressesServedBy('::', here).map((a) => a.address)).toEqual(['192.168.1.20', 'fd00::20', 'fe80::1%eth0', '2001:db8::5', 'fe80::2%wg0']);
  });

  test('own addresses: the whole loopback network, IPv4-mapped forms, link-local only with the right zone', () => {
    expect(isOwnAddress('192.168.1.20', LAPTOP)).toBe(true);
    expect(isOwnAddress('::ffff:192.168.1.20', LAPTOP)).toBe(true);
    expect(isOwnAddress('127.0.0.5', LAPTOP)).toBe(true);
    expect(isOwnAddress('FD00::20', LAPTOP)).toBe(true);
    expect(isOwnAddress('fe80::1%eth0', LAPTOP)).toBe(true);
    expect(isOwnAddress('fe80::1%2', LAPTOP)).toBe(true);
    expect(isOwnAddress('fe80::1%wg0', LAPTOP)).toBe(false);
    expect(isOwnAddress('192.168.1.21', LAPTOP)).toBe(false);
    expect(isOwnAddress('10.0.0.1', OFFLINE)).toBe(false);
  });
});

describe('start-up banner', () => {
  test('loopback only: says so and how to open it, lists no LAN address', () => {
    const out = describeListening(listen('127.0.0.1', '::1'), 7447, [], 0, LAPTOP);
    expect(out).toContain('roomcast listening on 127.0.0.1:7447, [::1]:7447\n');
    expect(out).toContain('Connect:  nc 127.0.0.1 7447   or   roomcast join 127.0.0.1:7447\n');
    expect(out).toContain('Loopback only: other machines cannot connect. To open it to the LAN: roomcast serve --lan (every interface, announced), or --host ::\n');
    expect(out).not.toContain('192.168.1.20');
    expect(out).not.toContain('Warning');
  });

  test('with TLS: the commands shown speak it (join tls://, openssl s_client, https and wss), and clear text is mentioned unless --tls-only', () => {
    const out = describeListening(listen('::'), 7447, [], 0, LAPTOP, { only: false });
    expect(out).toContain('Connect:  roomcast join tls://127.0.0.1:7447   or   openssl s_client -quiet -connect 127.0.0.1:7447\n');
    expect(out).toContain('          (clear text too: nc 127.0.0.1 7447   or   roomcast join 127.0.0.1:7447)\n');
    expect(out).toContain('Web:      https://127.0.0.1:7447/   (WebSocket: wss://127.0.0.1:7447/ws, API: https://127.0.0.1:7447/api/rooms)\n');
    const lan = out.split('\n').filter((l) => l.includes('roomcast join tls://') && l.startsWith('  '));
    expect(lan[0]!.trim().split(/\s{2,}/)).toEqual(['eth0', 'roomcast join tls://192.168.1.20:7447', 'openssl s_client -quiet -connect 192.168.1.20:7447']);
    expect(out).toContain('  web page: https://192.168.1.20:7447/\n');
    expect(describeListening(listen('::'), 7447, [], 0, LAPTOP, { only: true })).not.toContain('clear text too');
  });

  test(':: lists every LAN address with ready-to-type commands (IPv6 bracketed for join, bare for nc)', () => {
    const out = describeListening(listen('::'), 7447, [], 0, LAPTOP);
    expect(out).toContain('roomcast listening on [::]:7447\n');
    expect(out).toContain('From other machines on the LAN:\n');
    const lan = out.split('\n').filter((l) => l.includes('roomcast join') && !l.startsWith('Connect'));
    expect(lan.map((l) => l.trim().split(/\s{2,}/))).toEqual([
      ['eth0', 'roomcast join 192.168.1.20:7447', 'nc 192.168.1.20 7447'],
      ['eth0', 'roomcast join [fd00::20]:7447', 'nc fd00::20 7447'],
      ['eth0', 'roomcast join [fe80::1%eth0]:7447', 'nc fe80::1%eth0 7447'],
      ['wg0', 'roomcast join [2001:db8::5]:7447', 'nc 2001:db8::5 7447'],
      ['wg0', 'roomcast join [fe80::2%wg0]:7447', 'nc fe80::2%wg0 7447'],
    ]);
    expect(out).toContain('  web page: http://192.168.1.20:7447/\n');
    expect(out).toMatch(/fe80:: is link-local: same link only, and after % goes the interface's name on the connecting machine/);
    expect(out).not.toContain('Loopback only');
    expect(out).not.toContain('::1]'); // loopback is the Connect line's business, not the LAN list's
  });

  test('0.0.0.0 lists IPv4 only and says which IPv6 addresses it leaves out', () => {
    const out = describeListening(listen('0.0.0.0'), 9000, [], 0, LAPTOP);
    expect(out).toContain('  eth0  roomcast join 192.168.1.20:9000  nc 192.168.1.20 9000\n');
    expect(out).not.toContain('roomcast join [');
    expect(out).not.toContain('link-local');
    expect(out).toContain('0.0.0.0 is IPv4 only, so IPv6 clients cannot connect through fd00::20, fe80::1%eth0, 2001:db8::5, fe80::2%wg0; --host :: serves both.\n');
  });

  test(':: beside 0.0.0.0 (IPv6-only then) still covers both families, without the IPv4-only remark', () => {
    const out = describeListening(listen('0.0.0.0', '::'), 7447, [], 0, LAPTOP);
    expect(out).toContain('nc 192.168.1.20 7447');
    expect(out).toContain('nc 2001:db8::5 7447');
    expect(out).not.toContain('IPv4 only');
  });

  test('an IPv6-only interface is listed for :: and the web page prefers an address without a zone', () => {
    const v6only: InterfaceMap = { lo: LO, wg0: [v6('fe80::2', 3), v6('2001:db8::5', 0)] };
    const out = describeListening(listen('::'), 7447, listen('::'), 8080, v6only);
    expect(out).toContain('HTTP and WebSocket on [::]:8080\n');
    expect(out).toContain('wg0  roomcast join [2001:db8::5]:7447');
    expect(out).toContain('  web page: http://[2001:db8::5]:8080/\n');
  });

  test('a wildcard on a machine with no LAN address says so', () => {
    const out = describeListening(listen('::'), 7447, [], 0, OFFLINE);
    expect(out).toContain('No LAN address on this machine right now (only loopback)');
    expect(out).not.toContain('From other machines');
  });

  test('one specific LAN address: its line, and no warning', () => {
    const out = describeListening(listen('192.168.1.20'), 7447, [], 0, LAPTOP);
    expect(out).toContain('Connect:  nc 192.168.1.20 7447   or   roomcast join 192.168.1.20:7447\n');
    expect(out).toContain('  eth0  roomcast join 192.168.1.20:7447  nc 192.168.1.20 7447\n');
    expect(out).not.toContain('Warning');
  });

  test('warns about a listening address this machine does not have (a non-local bind the system allowed)', () => {
    const out = describeListening(listen('192.168.1.99', '127.0.0.2'), 7447, [], 0, LAPTOP);
    expect(out).toContain("Warning: 192.168.1.99 is not one of this machine's addresses (ip addr lists them).");
    expect(out).not.toContain('Warning: 127.0.0.2');
  });
});

describe('why listening failed', () => {
  const fail = (code: string, address: string): NodeJS.ErrnoException =>
    Object.assign(new Error(`listen ${code}: ${address}`), { code, address, port: 7447 });

  test('an address that is not this machine\'s: says so and lists the ones it has', () => {
    const msg = explainListenError(fail('EADDRNOTAVAIL', '192.168.1.99'), 7447, ['192.168.1.99'], LAPTOP);
    expect(msg).toMatch(/^the address 192\.168\.1\.99 does not belong to this machine, so nothing can listen on it\./);
    expect(msg).toContain("This machine's addresses: 127.0.0.1, ::1, 192.168.1.20, fd00::20, fe80::1%eth0, 2001:db8::5, fe80::2%wg0");
  });

  test('a host name that resolves to an address of another machine: names the host name', () => {
    const msg = explainListenError(fail('EADDRNOTAVAIL', '10.1.2.3'), 7447, ['[::1]', 'chat.lan'], LAPTOP);
    expect(msg).toMatch(/^the host name chat\.lan resolves to 10\.1\.2\.3, which does not belong to this machine/);
    expect(msg).toContain('a host name binds every address it resolves to');
    const two = explainListenError(fail('EADDRNOTAVAIL', '10.1.2.3'), 7447, ['a.lan', 'b.lan'], LAPTOP);
    expect(two).toMatch(/^one of the host names a\.lan, b\.lan resolves to 10\.1\.2\.3/);
  });

  test('a link-local address without its zone: shows the one to use', () => {
    expect(explainListenError(fail('EINVAL', 'fe80::2'), 7447, ['fe80::2'], LAPTOP)).toBe(
      'fe80::2 is a link-local address, which exists once per interface: say which one, as in --host fe80::2%wg0',
    );
  });

  test('IPv6 turned off, port taken, privileged port', () => {
    expect(explainListenError(fail('EAFNOSUPPORT', '::1'), 7447, ['::1'], LAPTOP)).toContain('IPv6 is turned off on this machine');
    expect(explainListenError(fail('EADDRINUSE', '::'), 7447, ['::'], LAPTOP)).toBe(
      'port 7447 is already in use on [::]: another server is running there. Stop it, or pick another port with --port (0 picks a free one).',
    );
    expect(explainListenError(fail('EACCES', '0.0.0.0'), 80, ['0.0.0.0'], LAPTOP)).toContain('ports below 1024 need root');
  });
});
