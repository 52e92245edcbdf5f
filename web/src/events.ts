/**
 * The server events the page uses. Their types are the server's own (src/protocol/events.ts),
 * imported as types only from the declarations `npm run build` emits into dist/ first: the
 * page is built apart from the server and imports no Node code at run time.
 */
import type { ServerEvent } from '../../dist/protocol/events.js';

export type {
  EventOf,
  ImageEvent,
  LabelScore,
  LabelsEvent,
  MessageEvent,
  RequestId,
  RoomEvent,
  RoomInfo,
  SearchHit,
  ServerEvent,
} from '../../dist/protocol/events.js';

export function parseEvent(data: string): ServerEvent | null {
  try {
    const v = JSON.parse(data) as unknown;
    if (v && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string') return v as ServerEvent;
  } catch {
    /* not JSON: ignore */
  }
  return null;
}
