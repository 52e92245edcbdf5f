/**
 * The web page takes its event types from the server's (web/src/events.ts type-imports them),
 * so these checks now guard the page's parser and the import itself: a page that went back to a
 * copy of its own would have to keep fitting what the server sends.
 */
import type * as Server from '../../src/protocol/events.js';
import { Frame } from '../../src/protocol/frame.js';
import { parseEvent, type ServerEvent as PageServerEvent } from '../../web/src/events.js';
import type * as Page from '../../web/src/events.js';

/** true only when every A is a B (not distributed over unions, so one misfit makes it false). */
type Fits<A, B> = [A] extends [B] ? true : false;

test('every event the server sends is one the page’s types accept', () => {
  const room: Fits<Server.RoomEvent, Page.RoomEvent> = true;
  const all: Fits<Server.ServerEvent, PageServerEvent> = true;
  const info: Fits<Server.RoomInfo, Page.RoomInfo> = true;
  expect([room, all, info]).toEqual([true, true, true]);
});

test('the page parses what the server encodes, field for field', () => {
  const events: Server.ServerEvent[] = [
    { type: 'message', room: 'lobby', seq: 3, nick: 'ann', text: 'hi <b>', time: 1 },
    { type: 'image', room: 'lobby', seq: 4, nick: 'ann', image: 7, name: 'cat.jpg', size: 1200, time: 2 },
    { type: 'labels', room: 'lobby', seq: 5, nick: 'classifier', image: 7, name: 'cat.jpg', time: 3, labels: [{ index: 281, label: 'tabby', score: 0.9 }], model: 'm' },
  ];
  for (const e of events) expect(parseEvent(new Frame(e).json.toString('utf8'))).toEqual(e);
  expect(parseEvent('not json')).toBeNull();
});
