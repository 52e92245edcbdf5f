/** The one way sizes are shown, and the web page's copy of it (the page cannot import src/). */
import { formatBytes } from '../../src/format/units.js';
import { formatBytes as pageFormatBytes } from '../../web/src/format.js';

test.each([
  [0, '0 B'],
  [1023, '1023 B'],
  [1024, '1.0 KiB'],
  [12390, '12.1 KiB'],
  [1024 * 1024 - 1, '1024.0 KiB'],
  [1024 * 1024, '1.0 MiB'],
  [3655033, '3.5 MiB'],
])('%d bytes read %s', (n, shown) => {
  expect(formatBytes(n)).toBe(shown);
});

test('a part of a total is shown in the total\'s unit', () => {
  expect(formatBytes(921_600, 3655033)).toBe('0.9 MiB');
  expect(formatBytes(500, 31675)).toBe('0.5 KiB');
});

test('the page shows sizes exactly as the server and the terminal do', () => {
  const sizes = [0, 1, 999, 1023, 1024, 1536, 12390, 500_000, 1024 * 1024, 3655033, 8 << 20, 123_456_789];
  expect(sizes.map(pageFormatBytes)).toEqual(sizes.map((n) => formatBytes(n)));
});
