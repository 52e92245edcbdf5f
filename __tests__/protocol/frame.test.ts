/** How the bot's scores read in text mode, the terminal client and `roomcast post`. */
import { Frame } from '../../src/protocol/frame.js';
import { labelsSummary, scorePercent } from '../../src/format/units.js';
import type { LabelsEvent } from '../../src/protocol/events.js';

test.each([
  [0.95, '95%'],
  [0.041, '4%'],
  [0.005, '1%'],
  [0.0049, '<1%'],
  [0.0003, '<1%'],
  [0, '0%'],
  [0.994, '99%'],
  [0.995, '99.5%'],
  [0.99896, '99.9%'],
  // Not certain: never rounded up to the "100%" of a certain answer.
  [0.99996, '99.9%'],
  [1, '100%'],
  [Number.NaN, '?%'],
])('score %p reads %p', (score, shown) => {
  expect(scorePercent(score)).toBe(shown);
});

test.each([
  [0.33712, '33.7%'],
  [0.0004, '<0.1%'],
  [0.99896, '99.9%'],
  [0.99971, '99.97%'],
  [0.999999, '99.99%'],
])('with one decimal, score %p reads %p', (score, shown) => {
  expect(scorePercent(score, 1)).toBe(shown);
});

test('a labels answer reads as its labels with their scores, or as its error', () => {
  const base = { type: 'labels', room: 'lab', seq: 2, nick: 'classifier', image: 1, name: 'p.jpg', time: 0 } as const;
  const labels = [
    { index: 144, label: 'pelican', score: 0.99896 },
    { index: 132, label: 'American egret', score: 0.00039 },
  ];
  expect(labelsSummary({ ...base, labels } as LabelsEvent)).toBe('pelican 99.9%, American egret <1%');
  expect(labelsSummary({ ...base, error: { code: 'IMAGE_INVALID', message: 'not an image' } } as LabelsEvent)).toBe('not an image');
});

test("a transport's encoding is made once per frame and kind, also when a second kind asks", () => {
  const frame = new Frame({ type: 'ack', room: 'lab', seq: 1, time: 0 });
  const made: string[] = [];
  const maker = (kind: string) => (f: Frame) => {
    made.push(kind);
    return Buffer.from(`${kind}:${f.jsonText}`);
  };
  const ws = frame.encoded('ws', maker('ws'));
  expect(frame.encoded('ws', maker('ws'))).toBe(ws);
  const other = frame.encoded('other', maker('other'));
  expect(other.toString()).toBe('other:{"type":"ack","room":"lab","seq":1,"time":0}');
  expect(frame.encoded('other', maker('other'))).toBe(other);
  expect(frame.encoded('ws', maker('ws'))).toBe(ws);
  expect(made).toEqual(['ws', 'other']);
});
