/**
 * The words a person reads when a connection cannot be made: what happened, and what to do,
 * with advice that depends on whether the client aimed at this machine or another one.
 */
import {
  briefConnectError,
  connectErrorCode,
  explainConnectError,
  isLinkLocalWithoutZone,
  isLoopbackHost,
} from '../../src/client/connect-errors.js';
import { AddressError, parseServerAddress, parseServerAddresses } from '../../src/client/address.js';

function errno(code: string, message = `connect ${code}`): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

const lanServer = { host: '10.77.0.1', port: 7447 };

describe('explainConnectError', () => {
  test('refused on loopback: no server is running here, start one', () => {
    expect(explainConnectError(errno('ECONNREFUSED'), { host: '127.0.0.1', port: 9 })).toBe(
      'could not connect to 127.0.0.1:9: connection refused — is the server running? start one with: roomcast serve',
    );
    expect(explainConnectError(errno('ECONNREFUSED'), { host: '::1', port: 9 })).toContain('[::1]:9: connection refused — is the server running?');
  });

  test('refused by another machine: the server there may be bound to loopback only', () => {
    const text = explainConnectError(errno('ECONNREFUSED'), lanServer);
    expect(text).toMatch(/^could not connect to 10\.77\.0\.1:7447: connection refused — nothing is listening on port 7447 there for other machines\./);
    expect(text).toContain('bound to loopback only');
    expect(text).toContain('roomcast serve --host ::');
    expect(text).toContain('firewall');
    expect(explainConnectError(errno('ECONNREFUSED'), { host: 'fd77::1', port: 7447 })).toContain('[fd77::1]:7447: connection refused — nothing is listening');
  });

  test('an AggregateError (a host name with several addresses) is explained by its first attempt', () => {
    const both = Object.assign(new AggregateError([errno('ECONNREFUSED'), errno('ECONNREFUSED')]), { code: undefined });
    expect(connectErrorCode(both)).toBe('ECONNREFUSED');
    expect(explainConnectError(both, { host: 'localhost', port: 9 })).toBe(
      'could not connect to localhost:9: connection refused — is the server running? start one with: roomcast serve',
    );
    expect(explainConnectError(both, { host: 'chat.lan', port: 9 })).toContain('chat.lan:9: connection refused — nothing is listening');
  });

  test('no route to host: nothing answered on the local network', () => {
    const text = explainConnectError(errno('EHOSTUNREACH'), { host: '10.77.0.9', port: 7447 });
    expect(text).toMatch(/^could not connect to 10\.77\.0\.9:7447: no route to host — no machine answered at that address/);
    expect(text).toContain('same network');
    expect(text).toContain('guest Wi-Fi');
  });

  test('network unreachable: this machine is not on that network (IPv6: try IPv4)', () => {
    const v4 = explainConnectError(errno('ENETUNREACH'), { host: '192.0.2.1', port: 7447 });
    expect(v4).toMatch(/^could not connect to 192\.0\.2\.1:7447: network unreachable — this machine has no route to 192\.0\.2\.1/);
    expect(v4).not.toContain('IPv6');
    expect(explainConnectError(errno('ENETUNREACH'), { host: '2001:db8::1', port: 7447 })).toContain("use the server's IPv4 address");
  });

  test('timed out: says how long it waited and names the usual firewalls', () => {
    const text = explainConnectError(errno('ETIMEDOUT', 'timed out'), { ...lanServer, connectTimeoutMs: 10_000 });
    expect(text).toMatch(/^could not connect to 10\.77\.0\.1:7447: no answer within 10 s \(timed out\)/);
    expect(text).toContain('ufw');
    expect(text).toContain('Windows Defender Firewall');
    expect(explainConnectError(errno('ETIMEDOUT'), lanServer)).toContain('no answer (timed out)');
  });

  test('address not available points at the machine\'s own addresses', () => {
    expect(explainConnectError(errno('EADDRNOTAVAIL'), lanServer)).toMatch(/cannot be used from this machine — check it \(ip -brief addr/);
  });

  test('a link-local address without its zone says to add one, whatever the error', () => {
    const text = explainConnectError(errno('EINVAL'), { host: 'fe80::1', port: 7447 });
    expect(text).toBe(
      'could not connect to [fe80::1]:7447: fe80::1 is an IPv6 link-local address, which needs the interface it is reached through — ' +
        "add it as a zone: [fe80::1%eth0]:7447 (ip -brief addr lists this machine's interfaces)",
    );
    // With the zone, the ordinary advice applies.
    expect(explainConnectError(errno('ECONNREFUSED'), { host: 'fe80::1%rc0', port: 7447 })).toContain(
      '[fe80::1%rc0]:7447: connection refused — nothing is listening',
    );
  });

  test('host names that do not resolve, resets, and unknown errors', () => {
    expect(explainConnectError(errno('ENOTFOUND'), { host: 'chat.lan', port: 1 })).toBe(
      'could not connect to chat.lan:1: the host name "chat.lan" could not be resolved — check the spelling, or use the server\'s IP address (roomcast serve prints it)',
    );
    expect(explainConnectError(errno('ECONNRESET'), lanServer)).toContain('the connection was reset');
    expect(explainConnectError(errno('EWEIRD', 'something odd'), lanServer)).toBe('could not connect to 10.77.0.1:7447: something odd');
  });
});

describe('briefConnectError', () => {
  test.each([
    ['ECONNREFUSED', 'connection refused'],
    ['EHOSTUNREACH', 'no route to host'],
    ['ENETUNREACH', 'network unreachable'],
    ['ETIMEDOUT', 'connection timed out'],
    ['EADDRNOTAVAIL', 'address not available'],
    ['ENOTFOUND', 'host name not found'],
  ])('%s: %s', (code, words) => {
    expect(briefConnectError(errno(code))).toBe(words);
  });

  test('no error at all: the server hung up', () => {
    expect(briefConnectError(null)).toBe('the server closed the connection');
  });
});

describe('which addresses are which', () => {
  test.each([
    ['localhost', true],
    ['LOCALHOST', true],
    ['app.localhost', true],
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['10.77.0.1', false],
    ['fd77::1', false],
    ['chat.lan', false],
  ])('%s is loopback: %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });

  test('link-local needs a zone; other IPv6 does not', () => {
    expect(isLinkLocalWithoutZone('fe80::1')).toBe(true);
    expect(isLinkLocalWithoutZone('FE80::abcd:1')).toBe(true);
    expect(isLinkLocalWithoutZone('fe80::1%rc0')).toBe(false);
    expect(isLinkLocalWithoutZone('fd77::1')).toBe(false);
    expect(isLinkLocalWithoutZone('10.77.0.1')).toBe(false);
  });

  test('several addresses, comma-separated, each read as one; an empty one is refused', () => {
    expect(parseServerAddresses('a:1,[::1]:2, b', 7447)).toEqual([
      { host: 'a', port: 1 },
      { host: '::1', port: 2 },
      { host: 'b', port: 7447 },
    ]);
    expect(parseServerAddresses('a', 7447)).toEqual([{ host: 'a', port: 7447 }]);
    expect(() => parseServerAddresses('a,,b', 7447)).toThrow(/empty address between its commas/);
    expect(() => parseServerAddresses('a,b:x', 7447)).toThrow(AddressError);
  });

  test('the client parses a zone in brackets and bare', () => {
    expect(parseServerAddress('[fe80::6030:feff:fe3c:399c%rc0]:4242', 7447)).toEqual({ host: 'fe80::6030:feff:fe3c:399c%rc0', port: 4242 });
    expect(parseServerAddress('fe80::1%eth0', 7447)).toEqual({ host: 'fe80::1%eth0', port: 7447 });
  });
});
