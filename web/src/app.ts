/**
 * The roomcast web page: one WebSocket (see docs/protocol.md, "WebSocket"), rooms on the left,
 * the current room's messages in the middle, images inline with the classifier bot's labels.
 *
 * Everything other people send is put on the page as text (textContent), never as HTML.
 * Reconnecting: each room remembers the last seq it saw and joins again with "after", and every
 * room event is shown at most once (by seq), so a blip or a server restart leaves no gap and no
 * duplicate.
 */
import { Connection, type Status } from './connection.js';
import { byId, clockTime, el } from './dom.js';
import { formatBytes } from './format.js';
import type { EventOf, ImageEvent, LabelScore, LabelsEvent, MessageEvent, RoomEvent, RoomInfo, ServerEvent } from './events.js';

interface RoomState {
  name: string;
  /** Highest seq seen in this room (0: none yet). */
  lastSeq: number;
  /** The numbering lastSeq belongs to (the server's word on joining): a rejoin sends it back. */
  epoch?: string;
  seen: Set<number>;
  /** Messages and images shown unnumbered while the server's cluster was away (localKey). */
  local: Set<string>;
  members: Set<string>;
  topic: string;
  pane: HTMLDivElement;
  /** Image posts on the page, by image id, so the bot's labels go under their picture. */
  images: Map<number, HTMLElement>;
  unread: number;
  item: HTMLLIElement;
  /** We are in it on the server right now (false while reconnecting). */
  joined: boolean;
}

const STORE_NICK = 'roomcast.nick';
/** The server password, for this tab's reconnects (sessionStorage: gone with the tab). */
const STORE_PASSWORD = 'roomcast.serverPassword';
const PASSWORD_CODES = new Set(['PASSWORD_REQUIRED', 'PASSWORD_WRONG', 'LOCKED_OUT']);
const STORE_ROOMS = 'roomcast.rooms';
const NICK_FIXES = new Set(['NICK_TAKEN', 'NICK_INVALID', 'NICK_RESERVED', 'NICK_MIXED_SCRIPTS']);
/** The id of a nick change asked for by the login form (so its refusal goes back to the form). */
const LOGIN_NICK = 'login:nick';

const ui = {
  login: byId<HTMLDivElement>('login'),
  loginForm: byId<HTMLFormElement>('login-form'),
  nickInput: byId<HTMLInputElement>('nick-input'),
  roomInput: byId<HTMLInputElement>('room-input'),
  passwordLabel: byId<HTMLLabelElement>('password-label'),
  passwordInput: byId<HTMLInputElement>('password-input'),
  loginError: byId<HTMLParagraphElement>('login-error'),
  app: byId<HTMLDivElement>('app'),
  menuBtn: byId<HTMLButtonElement>('menu-btn'),
  sidebar: byId<HTMLElement>('sidebar'),
  roomTitle: byId<HTMLHeadingElement>('room-title'),
  topic: byId<HTMLSpanElement>('topic'),
  status: byId<HTMLSpanElement>('status'),
  me: byId<HTMLSpanElement>('me'),
  roomList: byId<HTMLUListElement>('room-list'),
  otherRooms: byId<HTMLUListElement>('other-rooms'),
  joinForm: byId<HTMLFormElement>('join-form'),
  joinInput: byId<HTMLInputElement>('join-input'),
  memberCount: byId<HTMLSpanElement>('member-count'),
  memberList: byId<HTMLUListElement>('member-list'),
  chat: byId<HTMLElement>('chat'),
  messages: byId<HTMLDivElement>('messages'),
  jump: byId<HTMLButtonElement>('jump-btn'),
  dropHint: byId<HTMLDivElement>('drop-hint'),
  composer: byId<HTMLFormElement>('composer'),
  searchForm: byId<HTMLFormElement>('search-form'),
  searchInput: byId<HTMLInputElement>('search-input'),
  searchResults: byId<HTMLElement>('search-results'),
  textInput: byId<HTMLInputElement>('text-input'),
  fileInput: byId<HTMLInputElement>('file-input'),
};

const rooms = new Map<string, RoomState>();
let current: RoomState | null = null;
let nick = '';
let registered = false;
let everRegistered = false;
/** The server's history id from its last welcome: a different one means our seqs mean nothing now. */
let history: string | null = null;
let nickRetries = 0;
let maxImageBytes = Infinity;
let nextId = 1;
const pendingMessages = new Map<number, { room: string; text: string; action: boolean }>();
const pendingImages = new Map<number, { room: string; name: string; size: number }>();
let roomsTimer: number | null = null;
/**
 * What the login form asked for and the server has not answered yet. The chat shows once both
 * the nick and the room are settled; a refusal of either goes back to the form.
 */
let login: { room: string; nick: string; nickPending: boolean; roomPending: boolean } | null = null;
/** A room that a try of the login form added; a later try for another room drops it if never joined. */
let formRoom: string | null = null;

/** The hello, with the server password when the server asked for one. */
function hello(): object {
  const password = sessionStorage.getItem(STORE_PASSWORD);
  return password === null ? { type: 'hello', nick, rooms: [] } : { type: 'hello', nick, rooms: [], serverPassword: password };
}

const wsUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
const conn = new Connection(wsUrl, {
  onOpen: () => {
    registered = false;
    conn.send(hello());
  },
  onEvent: (ev) => handle(ev),
  onStatus: (s) => showStatus(s),
});

// ---- rooms ---------------------------------------------------------------------------------

function roomState(name: string): RoomState {
  let r = rooms.get(name);
  if (r) return r;
  const pane = el('div', 'pane');
  pane.dataset.room = name;
  pane.hidden = true;
  ui.messages.append(pane);
  resized.observe(pane);
  const item = el('li', 'room');
  const open = el('button', 'room-open');
  open.type = 'button';
  open.append(el('span', 'room-name', `#${name}`), el('span', 'badge'));
  open.addEventListener('click', () => {
    select(name);
    document.body.classList.remove('show-sidebar');
  });
  const leave = el('button', 'room-leave', '×');
  leave.type = 'button';
  leave.title = `Leave #${name}`;
  leave.setAttribute('aria-label', `Leave #${name}`);
  leave.addEventListener('click', () => part(name));
  item.append(open, leave);
  ui.roomList.append(item);
  r = { name, lastSeq: 0, seen: new Set(), local: new Set(), members: new Set(), topic: '', pane, images: new Map(), unread: 0, item, joined: false };
  rooms.set(name, r);
  saveRooms();
  return r;
}

function saveRooms(): void {
  try {
    localStorage.setItem(STORE_ROOMS, JSON.stringify([...rooms.keys()]));
  } catch {
    /* storage may be off */
  }
}

function select(name: string): void {
  const r = rooms.get(name);
  if (!r) return;
  if (current) {
    current.pane.hidden = true;
    current.item.classList.remove('current');
  }
  current = r;
  r.pane.hidden = false;
  r.item.classList.add('current');
  r.unread = 0;
  renderBadge(r);
  ui.roomTitle.textContent = `#${r.name}`;
  ui.topic.textContent = r.topic;
  renderMembers();
  toEnd();
  document.title = `#${r.name} · roomcast`;
}

function join(name: string): void {
  const r = roomState(name);
  if (conn.isOpen && registered) conn.send(joinRequest(r));
  select(name);
}

/** Room names as the server keys them (normalizeRoom in src/protocol/text.ts): no "#", NFC, lower case. */
function roomName(typed: string): string {
  return typed.trim().replace(/^#/, '').normalize('NFC').toLowerCase();
}

/** A join names its room in its id, so a refusal (ROOM_INVALID, TOO_MANY_ROOMS) can be tied to it. */
function joinRequest(r: RoomState): object {
  const id = `join:${r.name}`;
  if (r.lastSeq === 0) return { type: 'join', room: r.name, id };
  return r.epoch === undefined ? { type: 'join', room: r.name, after: r.lastSeq, id } : { type: 'join', room: r.name, after: r.lastSeq, epoch: r.epoch, id };
}

function part(name: string): void {
  const r = rooms.get(name);
  if (!r) return;
  if (conn.isOpen && registered && r.joined) conn.send({ type: 'part', room: name });
  forget(r);
}

function forget(r: RoomState): void {
  rooms.delete(r.name);
  resized.unobserve(r.pane);
  r.pane.remove();
  r.item.remove();
  saveRooms();
  if (current === r) {
    current = null;
    const next = rooms.keys().next();
    if (!next.done) select(next.value);
    else {
      ui.roomTitle.textContent = 'no room';
      ui.topic.textContent = '';
      renderMembers();
    }
  }
  requestRooms();
}

function renderBadge(r: RoomState): void {
  const badge = r.item.querySelector('.badge');
  if (badge) badge.textContent = r.unread > 0 ? String(r.unread) : '';
  r.item.classList.toggle('unread', r.unread > 0);
}

function renderMembers(): void {
  ui.memberList.replaceChildren();
  if (!current) {
    ui.memberCount.textContent = '';
    return;
  }
  const names = [...current.members].sort((a, b) => a.localeCompare(b));
  ui.memberCount.textContent = `(${names.length})`;
  for (const n of names) ui.memberList.append(el('li', n === nick ? 'member me' : 'member', n));
}

function renderOtherRooms(list: RoomInfo[]): void {
  ui.otherRooms.replaceChildren();
  for (const info of list) {
    if (rooms.has(info.room)) continue;
    const li = el('li');
    const b = el('button', 'other-room');
    b.type = 'button';
    b.append(el('span', 'room-name', `#${info.room}`), el('span', 'count', String(info.members)));
    if (info.topic) b.title = info.topic;
    b.addEventListener('click', () => {
      join(info.room);
      document.body.classList.remove('show-sidebar');
    });
    li.append(b);
    ui.otherRooms.append(li);
  }
  if (!ui.otherRooms.firstChild) ui.otherRooms.append(el('li', 'empty', 'none'));
}

function requestRooms(): void {
  if (conn.isOpen && registered) conn.send({ type: 'rooms' });
}

// ---- messages ------------------------------------------------------------------------------

/*
 * Following the conversation. Whether the reader is at the bottom is remembered, not measured
 * when something arrives: a picture or the bot's labels make the page taller after the post was
 * placed, and measured then, the reader would already look scrolled up. So the view sticks to
 * the bottom until the reader scrolls up, and any change of height re-sticks it.
 */
let following = true;
let lastTop = 0;

function nearEnd(): boolean {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 24;
}

function toEnd(): void {
  following = true;
  ui.messages.scrollTop = ui.messages.scrollHeight;
  lastTop = ui.messages.scrollTop;
  ui.jump.hidden = true;
}

/** Something new was put in the current room: follow it, or tell a reader who scrolled up. */
function arrived(news: boolean): void {
  if (following) toEnd();
  else if (news) ui.jump.hidden = false;
}

function onScroll(): void {
  const top = ui.messages.scrollTop;
  if (nearEnd()) {
    following = true;
    ui.jump.hidden = true;
  } else if (top < lastTop) {
    // Only the reader moves the view up: content that grows or scroll anchoring move it down.
    following = false;
  }
  lastTop = top;
}

/** The current room's content or the view changed size (a picture loaded, labels came, a resize). */
const resized = new ResizeObserver(() => {
  if (following) toEnd();
});

/** Puts a room event in its place by seq (history can arrive after live messages). */
function place(r: RoomState, node: HTMLElement, seq: number): void {
  node.dataset.seq = String(seq);
  let after: Element | null = r.pane.lastElementChild;
  while (after && !after.classList.contains('divider')) {
    const s = Number((after as HTMLElement).dataset.seq ?? NaN);
    if (!Number.isNaN(s) && s < seq) break;
    after = after.previousElementSibling;
  }
  if (after) after.after(node);
  else r.pane.prepend(node);
}

/** `news`: worth the "New messages" button if the reader has scrolled up (not comings and goings). */
function notice(r: RoomState | null, text: string, cls = 'notice', news = true): void {
  const target = r ?? current;
  if (!target) {
    ui.loginError.textContent = text;
    return;
  }
  const node = el('div', `msg ${cls}`, text);
  // Between the last room event seen and the next one, so history placed later goes around it.
  node.dataset.seq = String(target.lastSeq + 0.5);
  target.pane.append(node);
  if (target === current) arrived(news);
}

function head(ev: { nick: string; time: number }): HTMLElement[] {
  const time = el('time', 'time', clockTime(ev.time));
  time.dateTime = new Date(ev.time).toISOString();
  time.title = new Date(ev.time).toLocaleString();
  return [time, el('span', ev.nick === nick ? 'nick me' : 'nick', ev.nick)];
}

/** As the server tells an unnumbered message or image post from the same one numbered (localEventKey). */
function localKey(ev: MessageEvent | ImageEvent): string {
  return ev.type === 'image' ? `image ${ev.image}` : `${ev.nick}\n${ev.time}\n${ev.text}`;
}

function addEvent(ev: RoomEvent, live: boolean): void {
  const r = rooms.get(ev.room);
  if (!r || typeof ev.seq !== 'number') return;
  if (ev.type !== 'labels' && ev.local) {
    // Said while the server's cluster was away: no number yet; it goes after what is shown.
    place(r, ev.type === 'message' ? messageNode(ev) : imageNode(r, ev), r.lastSeq + 0.5);
    if (r.local.size < 1000) r.local.add(localKey(ev));
    return;
  }
  if (r.seen.has(ev.seq)) return;
  r.seen.add(ev.seq);
  if (ev.seq > r.lastSeq) r.lastSeq = ev.seq;
  // The same post come back numbered (live, or in a replay from another server): shown already.
  if (ev.type !== 'labels' && r.local.delete(localKey(ev))) return;
  if (ev.type === 'message') place(r, messageNode(ev), ev.seq);
  else if (ev.type === 'image') place(r, imageNode(r, ev), ev.seq);
  else if (ev.type === 'labels') {
    const post = r.images.get(ev.image);
    const box = post?.querySelector<HTMLElement>('.labels');
    if (box) fillLabels(box, ev);
    else place(r, orphanLabels(ev), ev.seq);
  }
  if (live && r !== current && ev.type !== 'labels') {
    r.unread++;
    renderBadge(r);
  }
  if (r === current) arrived(ev.type !== 'labels');
}

function messageNode(ev: MessageEvent): HTMLElement {
  const node = el('div', ev.action ? 'msg action' : 'msg');
  const [time, who] = head(ev);
  const text = el('span', 'text', ev.text);
  if (ev.action) node.append(time, el('span', 'star', '*'), who, text);
  else node.append(time, who, text);
  return node;
}

function imageNode(r: RoomState, ev: ImageEvent): HTMLElement {
  const node = el('div', 'msg post');
  node.append(...head(ev));
  const fig = el('figure', 'figure');
  const link = el('a', 'image-link');
  link.href = `/api/images/${ev.image}`;
  link.target = '_blank';
  link.rel = 'noopener';
  const img = el('img', 'image');
  img.alt = ev.name;
  img.decoding = 'async';
  const gone = (): void => link.replaceWith(el('div', 'image-gone', 'This image is no longer kept by the server.'));
  img.addEventListener('error', gone);
  const password = sessionStorage.getItem(STORE_PASSWORD);
  if (password === null) img.src = `/api/images/${ev.image}`;
  else {
    // The API needs the server password, which an <img> cannot send: fetched with it instead
    // (a plain src would make the browser ask for a user name and password of its own).
    void fetch(`/api/images/${ev.image}`, { headers: { Authorization: `Bearer ${password}` } })
      .then((res) => (res.ok ? res.blob() : Promise.reject(new Error(String(res.status)))))
      .then((blob) => {
        img.src = link.href = URL.createObjectURL(blob);
      }, gone);
  }
  link.append(img);
  const caption = el('figcaption', 'caption', `${ev.name} · ${formatBytes(ev.size)}`);
  const labels = el('div', 'labels pending', 'classifying…');
  labels.dataset.image = String(ev.image);
  fig.append(link, caption, labels);
  node.append(fig);
  node.dataset.image = String(ev.image);
  r.images.set(ev.image, node);
  return node;
}

function fillLabels(box: HTMLElement, ev: LabelsEvent): void {
  box.replaceChildren();
  box.classList.remove('pending');
  if (ev.error || !ev.labels) {
    box.classList.add('failed');
    box.append(el('span', 'label-error', `${ev.nick}: ${ev.error?.message ?? 'no labels'}`));
    return;
  }
  box.append(el('div', 'labels-by', ev.model ? `${ev.nick} (${ev.model}) sees:` : `${ev.nick} sees:`));
  const list = el('ol', 'label-list');
  for (const l of ev.labels) list.append(labelRow(l));
  box.append(list);
}

function labelRow(l: LabelScore): HTMLLIElement {
  const pct = Math.max(0, Math.min(100, l.score * 100));
  const row = el('li', 'label');
  const bar = el('span', 'bar');
  const fill = el('span', 'fill');
  fill.style.width = `${pct.toFixed(1)}%`; // CSSOM, not a style attribute: allowed by the CSP
  bar.append(fill);
  bar.setAttribute('role', 'meter');
  bar.setAttribute('aria-valuemin', '0');
  bar.setAttribute('aria-valuemax', '100');
  bar.setAttribute('aria-valuenow', pct.toFixed(0));
  row.append(el('span', 'label-name', l.label), bar, el('span', 'score', percentText(pct)));
  return row;
}

/**
 * One decimal under 10%. The ends follow the terminal's rules (scorePercent() in the server's
 * protocol/frame.ts, which this bundle cannot import): a label the model ranked reads "<0.1%"
 * rather than "0.0%", and an answer it is not sure of never reads "100%".
 */
function percentText(pct: number): string {
  if (pct >= 100) return '100%';
  if (pct >= 99.5) return `${Math.min(99.9, Math.round(pct * 10) / 10).toFixed(1)}%`;
  if (pct > 0 && pct < 0.05) return '<0.1%';
  return `${pct.toFixed(pct < 10 ? 1 : 0)}%`;
}

/** Labels whose picture is not on the page (it came before our history). */
function orphanLabels(ev: LabelsEvent): HTMLElement {
  const node = el('div', 'msg post orphan');
  node.append(...head(ev), el('span', 'text', `about ${ev.name}:`));
  const box = el('div', 'labels');
  fillLabels(box, ev);
  node.append(box);
  return node;
}

// ---- events from the server ----------------------------------------------------------------

function handle(ev: ServerEvent): void {
  switch (ev.type) {
    case 'welcome': {
      registered = true;
      everRegistered = true;
      nickRetries = 0;
      conn.registered();
      setNick(ev.nick);
      maxImageBytes = ev.limits.maxImageBytes ?? Infinity;
      if (history !== null && ev.history !== history) {
        // Another history: our numbers mean nothing to this server, so each room counts afresh.
        for (const r of rooms.values()) {
          r.pane.append(el('div', 'msg divider', 'The server restarted without its history: what was said while you were away is lost.'));
          r.seen.clear();
          r.images.clear();
          r.lastSeq = 0;
        }
      }
      history = ev.history;
      // (A login waits for its room: the chat shows when that is joined, or the form says why not.)
      for (const r of rooms.values()) conn.send(joinRequest(r));
      requestRooms();
      if (roomsTimer === null) roomsTimer = window.setInterval(requestRooms, 20_000);
      if (!current && rooms.size > 0) select(rooms.keys().next().value!);
      break;
    }
    case 'message':
    case 'image':
    case 'labels':
      addEvent(ev, true);
      break;
    case 'history': {
      const r = rooms.get(ev.room);
      if (!r) break;
      if (ev.missed > 0) notice(r, `${ev.missed} earlier message${ev.missed === 1 ? ' is' : 's are'} no longer kept by the server.`);
      for (const m of ev.messages) addEvent(m, false);
      break;
    }
    case 'ack': {
      if (typeof ev.id !== 'number') break;
      const m = pendingMessages.get(ev.id);
      if (m) {
        pendingMessages.delete(ev.id);
        addEvent({ type: 'message', room: ev.room, seq: ev.seq, nick, text: m.text, time: ev.time, ...(m.action ? { action: true as const } : {}) }, false);
      }
      const p = pendingImages.get(ev.id);
      if (p && ev.image !== undefined) {
        pendingImages.delete(ev.id);
        addEvent({ type: 'image', room: ev.room, seq: ev.seq, nick, image: ev.image, name: p.name, size: p.size, time: ev.time }, false);
      }
      break;
    }
    case 'joined': {
      const r = ev.self ? roomState(ev.room) : rooms.get(ev.room);
      if (!r) break;
      if (ev.self) {
        r.joined = true;
        if (typeof ev.epoch === 'string') {
          if (r.epoch !== undefined && ev.epoch !== r.epoch) {
            // Another numbering (the server lost the room's history; its notice says so): what
            // it sends now is all new to us.
            r.seen.clear();
            r.images.clear();
            r.lastSeq = 0;
          }
          r.epoch = ev.epoch;
        }
        if (typeof ev.seq === 'number' && ev.seq < r.lastSeq) {
          // The server restarted (seqs start again at 1): what it has now is all new to us.
          r.pane.append(el('div', 'msg divider', 'The server restarted.'));
          r.seen.clear();
          r.images.clear();
          r.lastSeq = 0;
          conn.send({ type: 'history', room: r.name, limit: 50 });
        }
        r.members = new Set(ev.members ?? [nick]);
        r.topic = ev.topic ?? '';
        if (!current) select(r.name);
        if (login?.room === r.name) {
          login.roomPending = false;
          settleLogin();
        }
      } else {
        r.members.add(ev.nick);
        notice(r, `${ev.nick} joined`, 'notice join', false);
      }
      if (r === current) {
        renderMembers();
        ui.topic.textContent = r.topic;
      }
      break;
    }
    case 'parted': {
      const r = rooms.get(ev.room);
      if (!r) break;
      if (ev.self) {
        forget(r);
        break;
      }
      r.members.delete(ev.nick);
      notice(r, `${ev.nick} ${ev.quit ? 'quit' : 'left'}${ev.reason ? ` (${ev.reason})` : ''}`, 'notice part', false);
      if (r === current) renderMembers();
      break;
    }
    case 'nick': {
      if (ev.self || ev.old === nick) setNick(ev.nick);
      if (ev.self && ev.id === LOGIN_NICK && login) {
        login.nickPending = false;
        settleLogin();
      }
      for (const r of rooms.values()) {
        if (!r.members.delete(ev.old)) continue;
        r.members.add(ev.nick);
        notice(r, `${ev.old} is now known as ${ev.nick}`, 'notice', false);
      }
      renderMembers();
      break;
    }
    case 'topic': {
      const r = rooms.get(ev.room);
      if (!r) break;
      if (ev.nick && ev.topic !== r.topic) notice(r, `${ev.nick} set the topic: ${ev.topic}`);
      r.topic = ev.topic;
      if (r === current) ui.topic.textContent = r.topic;
      break;
    }
    case 'who': {
      const r = rooms.get(ev.room);
      if (!r) break;
      r.members = new Set(ev.members);
      if (r === current) renderMembers();
      break;
    }
    case 'rooms':
      renderOtherRooms(ev.rooms);
      break;
    case 'privmsg':
      notice(current, `${ev.from === nick ? `→ ${ev.to}` : `${ev.from} (private)`}: ${ev.text}`, 'notice private');
      break;
    case 'notice':
      notice(current, ev.text);
      break;
    case 'search':
      showSearch(ev);
      break;
    case 'error':
      if (ev.id === SEARCH_ID) showSearchError(ev.message);
      else onError(ev);
      break;
    case 'bye':
      if (ev.code === 'QUIT') conn.stop(ev.reason);
      break;
    default:
      break;
  }
}

/** The id of the search the box asked for: only the latest answer is shown. */
const SEARCH_ID = 'search';

ui.searchForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const q = ui.searchInput.value.trim();
  if (!q || !current || !conn.isOpen) return;
  conn.send({ type: 'search', room: current.name, q, limit: 50, id: SEARCH_ID });
});

function closeSearch(): void {
  ui.searchResults.hidden = true;
  ui.searchResults.replaceChildren();
}

function searchHead(text: string): HTMLElement {
  const head = el('div', 'search-head');
  const close = el('button', 'search-close', '×');
  close.type = 'button';
  close.setAttribute('aria-label', 'Close the search results');
  close.addEventListener('click', closeSearch);
  head.append(el('span', undefined, text), close);
  return head;
}

/** Search results, newest first, the matching words in <mark> (text nodes only, never HTML). */
function showSearch(ev: EventOf<'search'>): void {
  const n = ev.hits.length;
  const head = n === 0 ? `No messages in ${ev.room} match “${ev.q}”.` : `${n}${ev.more ? ' newest' : ''} message${n === 1 ? '' : 's'} in ${ev.room} match “${ev.q}”:`;
  const rows = ev.hits.map((h) => {
    const row = el('div', 'msg hit');
    row.append(el('span', 'time', clockTime(h.time)), el('span', 'nick', h.nick));
    let at = 0;
    for (const [a, b] of h.marks) {
      if (a < at || b > h.text.length || a >= b) continue;
      row.append(document.createTextNode(h.text.slice(at, a)), el('mark', undefined, h.text.slice(a, b)));
      at = b;
    }
    row.append(document.createTextNode(h.text.slice(at)));
    return row;
  });
  ui.searchResults.replaceChildren(searchHead(head), ...rows);
  ui.searchResults.hidden = false;
}

function showSearchError(message: string): void {
  ui.searchResults.replaceChildren(searchHead(message));
  ui.searchResults.hidden = false;
}

function onError(ev: { id?: string | number; code: string; message: string }): void {
  if (!registered && PASSWORD_CODES.has(ev.code)) {
    // The server has a password: the form asks for it (and keeps it for this tab's reconnects).
    sessionStorage.removeItem(STORE_PASSWORD);
    ui.passwordLabel.hidden = false;
    ui.passwordInput.hidden = false;
    ui.passwordInput.required = true;
    loginFailed(ev.code === 'PASSWORD_REQUIRED' ? 'This server needs a password: ask whoever runs it.' : ev.message, ui.passwordInput);
    return;
  }
  if (ev.id === LOGIN_NICK) {
    loginFailed(formNickError(ev), ui.nickInput);
    return;
  }
  if (!registered && NICK_FIXES.has(ev.code)) {
    if (everRegistered && !login && ev.code === 'NICK_TAKEN' && nickRetries < 5) {
      // Most likely our own old connection, not yet noticed gone: try again, then a variant.
      nickRetries++;
      // (The nick field's maxlength is the server's longest nick.)
      if (nickRetries >= 3) setNick(`${nick.replace(/_+$/, '')}_`.slice(0, ui.nickInput.maxLength));
      window.setTimeout(() => conn.send(hello()), 500 * nickRetries);
      return;
    }
    loginFailed(formNickError(ev), ui.nickInput);
    return;
  }
  if (typeof ev.id === 'number') {
    const m = pendingMessages.get(ev.id);
    const p = pendingImages.get(ev.id);
    pendingMessages.delete(ev.id);
    pendingImages.delete(ev.id);
    const room = rooms.get(m?.room ?? p?.room ?? '') ?? current;
    notice(room, `${p ? `Could not post ${p.name}` : m ? 'Not sent' : 'Error'}: ${ev.message}`, 'notice error');
    return;
  }
  if (typeof ev.id === 'string' && ev.id.startsWith('join:')) {
    const name = ev.id.slice(5);
    const r = rooms.get(name);
    if (r && !r.joined) forget(r);
    // The room typed on the form goes back to the form, unless the fix is in the chat (leave a room).
    if (login?.room === name && (ev.code !== 'TOO_MANY_ROOMS' || !current)) {
      loginFailed(ev.message, ui.roomInput);
      return;
    }
    if (login?.room === name) {
      login = null;
      showChat();
    }
    if (!current) loginFailed(ev.message, ui.roomInput);
    else notice(current, ev.message, 'notice error');
    return;
  }
  notice(current, ev.message, 'notice error');
}

/**
 * The server's words for a refused nick tell a chat user to type /nick; on the form, they are
 * the form's own, chosen by the error's code. (NICK_INVALID's are kept: they give the rules.)
 */
function formNickError(ev: { code: string; message: string }): string {
  const wanted = login?.nick ?? nick;
  if (ev.code === 'NICK_TAKEN') return `Someone is already called "${wanted}" here. Pick another nick.`;
  if (ev.code === 'NICK_RESERVED') return `"${wanted}" is kept for the server's own use. Pick another nick.`;
  return ev.message;
}

/** The login form's nick and room are both settled: on to the chat, in that room. */
function settleLogin(): void {
  if (!login || login.nickPending || login.roomPending) return;
  const room = login.room;
  login = null;
  formRoom = null;
  showChat();
  select(room);
}

function showChat(): void {
  ui.loginError.textContent = '';
  ui.login.hidden = true;
  ui.app.hidden = false;
}

/** Back to the login form, saying why; the field to fix gets the focus. */
function loginFailed(text: string, field: HTMLInputElement): void {
  login = null;
  ui.app.hidden = true;
  ui.login.hidden = false;
  ui.loginError.textContent = text;
  field.focus();
  field.select();
}

function setNick(n: string): void {
  nick = n;
  ui.me.textContent = n;
  try {
    localStorage.setItem(STORE_NICK, n);
  } catch {
    /* storage may be off */
  }
}

function showStatus(s: Status): void {
  ui.status.className = `status ${s.state}`;
  switch (s.state) {
    case 'open':
      ui.status.textContent = 'online';
      break;
    case 'connecting':
      ui.status.textContent = s.attempt > 1 ? 'reconnecting…' : 'connecting…';
      break;
    case 'waiting':
      registered = false;
      for (const r of rooms.values()) r.joined = false;
      ui.status.textContent = `offline, retrying in ${Math.ceil(s.inMs / 1000)}s`;
      ui.status.title = s.reason;
      break;
    case 'stopped':
      registered = false;
      ui.status.textContent = 'disconnected';
      ui.status.title = s.reason;
      break;
  }
}

// ---- sending -------------------------------------------------------------------------------

function sendText(raw: string): void {
  const text = raw.trim();
  if (!text) return;
  if (text.startsWith('/') && !text.startsWith('//')) {
    command(text);
    return;
  }
  say(text.startsWith('//') ? text.slice(1) : text, false);
}

function say(text: string, action: boolean): void {
  if (!current) return notice(null, 'Join a room first.');
  if (!conn.isOpen || !registered) return notice(current, 'Not connected: your message was not sent. Reconnecting…', 'notice error');
  toEnd(); // what you send is what you want to see
  const id = nextId++;
  pendingMessages.set(id, { room: current.name, text, action });
  conn.send({ type: 'message', room: current.name, text, id, ...(action ? { action: true } : {}) });
}

function command(line: string): void {
  const [cmd, ...rest] = line.slice(1).split(/\s+/);
  const arg = rest.join(' ');
  switch (cmd.toLowerCase()) {
    case 'join':
    case 'j':
      if (arg) join(roomName(arg));
      break;
    case 'part':
    case 'leave':
      if (current) part(current.name);
      break;
    case 'me':
      if (arg) say(arg, true);
      break;
    case 'nick':
      if (arg) conn.send({ type: 'nick', nick: arg });
      break;
    case 'topic':
      if (current) conn.send(arg ? { type: 'topic', room: current.name, topic: arg } : { type: 'topic', room: current.name });
      break;
    case 'msg': {
      const [to, ...words] = rest;
      if (to && words.length) conn.send({ type: 'privmsg', to, text: words.join(' ') });
      break;
    }
    default:
      notice(current, 'Commands: /join ROOM, /part, /me TEXT, /nick NAME, /topic [TEXT], /msg NICK TEXT. Start a message with // to send a literal /.');
  }
}

async function postImage(file: File): Promise<void> {
  if (!current) return notice(null, 'Join a room first.');
  const room = current;
  if (!file.type.startsWith('image/') && file.type !== '') return notice(room, `${file.name} is not an image.`, 'notice error');
  if (file.size > maxImageBytes)
    return notice(room, `${file.name} is ${formatBytes(file.size)}; the server takes at most ${formatBytes(maxImageBytes)}.`, 'notice error');
  const bytes = await file.arrayBuffer();
  if (!conn.isOpen || !registered) return notice(room, 'Not connected: the image was not posted.', 'notice error');
  if (room === current) toEnd();
  const id = nextId++;
  const name = file.name || 'pasted-image';
  pendingImages.set(id, { room: room.name, name, size: bytes.byteLength });
  // Header and bytes back to back: nothing else may go between them.
  conn.send({ type: 'image', room: room.name, name, size: bytes.byteLength, id });
  if (bytes.byteLength > 0) conn.sendBinary(bytes);
}

function firstImage(files: FileList | null | undefined): File | null {
  if (!files) return null;
  for (const f of Array.from(files)) if (f.type.startsWith('image/')) return f;
  return null;
}

// ---- wiring --------------------------------------------------------------------------------

function start(): void {
  let saved: string[] = [];
  try {
    ui.nickInput.value = localStorage.getItem(STORE_NICK) ?? '';
    saved = JSON.parse(localStorage.getItem(STORE_ROOMS) ?? '[]') as string[];
  } catch {
    /* nothing saved */
  }
  const params = new URLSearchParams(location.search);
  const wanted = params.get('room');
  if (wanted) ui.roomInput.value = wanted;
  else if (Array.isArray(saved) && typeof saved[0] === 'string') ui.roomInput.value = saved[0];

  ui.loginForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const n = ui.nickInput.value.trim();
    const room = roomName(ui.roomInput.value) || 'lobby';
    if (!n) {
      ui.loginError.textContent = 'Pick a nick.';
      ui.nickInput.focus();
      return;
    }
    // A try is under way (Join pressed twice): its answer comes first.
    if (login && !registered && conn.isOpen) return;
    ui.loginError.textContent = '';
    // An earlier try's room, never joined, is not wanted now: this try names the room.
    if (formRoom !== null && formRoom !== room) {
      const old = rooms.get(formRoom);
      if (old && !old.joined) forget(old);
    }
    if (!rooms.has(room)) formRoom = room;
    else if (formRoom !== room) formRoom = null;
    const r = roomState(room);
    select(room);
    if (registered) {
      // Back here after a refusal: still connected, so ask for what changed.
      login = { room, nick: n, nickPending: n !== nick, roomPending: !r.joined };
      if (login.nickPending) conn.send({ type: 'nick', nick: n, id: LOGIN_NICK });
      if (login.roomPending) conn.send(joinRequest(r));
      settleLogin();
      return;
    }
    login = { room, nick: n, nickPending: false, roomPending: true };
    nick = n;
    if (!ui.passwordInput.hidden) sessionStorage.setItem(STORE_PASSWORD, ui.passwordInput.value);
    if (conn.isOpen) conn.send(hello());
    else conn.start();
  });

  ui.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    sendText(ui.textInput.value);
    ui.textInput.value = '';
  });
  ui.joinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const name = roomName(ui.joinInput.value);
    if (name) join(name);
    ui.joinInput.value = '';
    document.body.classList.remove('show-sidebar');
  });
  ui.menuBtn.addEventListener('click', () => document.body.classList.toggle('show-sidebar'));
  ui.fileInput.addEventListener('change', () => {
    const f = firstImage(ui.fileInput.files) ?? ui.fileInput.files?.[0] ?? null;
    if (f) void postImage(f);
    ui.fileInput.value = '';
  });

  let dragDepth = 0;
  const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes('Files');
  ui.chat.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth++;
    ui.dropHint.hidden = false;
  });
  ui.chat.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
  });
  ui.chat.addEventListener('dragleave', () => {
    if (--dragDepth <= 0) {
      dragDepth = 0;
      ui.dropHint.hidden = true;
    }
  });
  ui.chat.addEventListener('drop', (e) => {
    e.preventDefault();
    dragDepth = 0;
    ui.dropHint.hidden = true;
    const f = firstImage(e.dataTransfer?.files);
    if (f) void postImage(f);
  });
  document.addEventListener('paste', (e) => {
    if (ui.app.hidden) return;
    const f = firstImage(e.clipboardData?.files);
    if (!f) return;
    e.preventDefault();
    void postImage(f);
  });
  window.addEventListener('online', () => conn.now());
  ui.messages.addEventListener('scroll', onScroll, { passive: true });
  resized.observe(ui.messages);
  ui.jump.addEventListener('click', () => toEnd());

  if (Array.isArray(saved)) for (const r of saved) if (typeof r === 'string' && r) roomState(r);
  ui.nickInput.focus();
}

start();
