/** Ban masks as a room matches them: nick globs, accounts, and IPv4 and IPv6 addresses or blocks. */
import { globMatch, maskMatches } from '../../src/hub/moderation.js';

test('nick globs: "*" and "?" over code points', () => {
  expect(globMatch('troll*', 'troll42')).toBe(true);
  expect(globMatch('troll*', 'atroll')).toBe(false);
  expect(globMatch('t?oll', 'troll')).toBe(true);
  expect(globMatch('*', '')).toBe(true);
  expect(globMatch('a*b*c', 'axxbyyc')).toBe(true);
  expect(globMatch('a*b*c', 'axxbyy')).toBe(false);
  expect(globMatch('анна*', 'анна2')).toBe(true);
  expect(globMatch('exact', 'exact')).toBe(true);
});

test('globs with many stars, as long as a nick can be, match as they should', () => {
  expect(globMatch(`${'*a'.repeat(11)}*b`, 'a'.repeat(24))).toBe(false);
  expect(globMatch(`${'*a'.repeat(11)}*b`, `${'a'.repeat(23)}b`)).toBe(true);
  expect(globMatch('*?*?*', 'ab')).toBe(true);
  expect(globMatch('*?*?*', 'a')).toBe(false);
});

test('a mask matches a person when any of its parts does', () => {
  const who = { key: 'bob', account: null, address: '10.0.3.7' };
  expect(maskMatches({ address: '10.0.3.0/24' }, who)).toBe(true);
  expect(maskMatches({ address: '10.0.4.0/24' }, who)).toBe(false);
  expect(maskMatches({ address: '10.0.3.7' }, who)).toBe(true);
  expect(maskMatches({ address: 'fd00::/8' }, { ...who, address: 'fd00::1' })).toBe(true);
  expect(maskMatches({ address: 'fd00::/8' }, who)).toBe(false);
  expect(maskMatches({ account: 'bob' }, who)).toBe(false);
  expect(maskMatches({ account: 'bob' }, { ...who, account: 'bob' })).toBe(true);
  expect(maskMatches({ nick: 'b*', address: '192.0.2.1' }, who)).toBe(true);
});
