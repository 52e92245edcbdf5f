/**
 * The roomcast web page: one WebSocket (see docs/protocol.md, "WebSocket"), rooms on the left,
 * the current room's messages in the middle, images inline with the classifier bot's labels.
 *
 * Everything other people send is put on the page as text (textContent), never as HTML.
 * Reconnecting: each room remembers the last seq it saw and joins again with "after", and every
 * room event is shown at most once (by seq), so a blip or a server restart leaves no gap and no
 * duplicate.
 *
 * Operators: a room's operators ("@" in the members list) get a menu on each other member
 * (kick, mute, ban); what any operator does shows as a line in the room.
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
  /** Its operators and the members logged in to their nick's account, by nickKey. */
  ops: Set<string>;
  loggedIn: Set<string>;
  /** Its modes as the server last said ("+ikt"; "" for none). */
  modes: string;
  /** The key it was joined with, for the joins after a reconnect (memory only). */
  key?: string;
  /** A `who` asked for soon, after members came in (the server tells no ops or accounts with a join). */
  whoTimer: number | null;
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
/**
 * The account (nick and password) this tab logged in to or registered, so that its reconnects
 * log in again: sessionStorage as the server password, gone with the tab.
 */
const STORE_ACCOUNT = 'roomcast.account';
/** The ids of the login form's /register and /login, so their answers go back to the form. */
const LOGIN_REGISTER = 'login:register';
const LOGIN_ACCOUNT = 'login:account';
const KEY_CODES = new Set(['ROOM_KEY_REQUIRED', 'ROOM_KEY_WRONG']);
/** The id of a /mode typed without a change: only that answer is shown (others just update). */
const MODE_QUERY = 'mode:query';
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
  roomKeyLabel: byId<HTMLLabelElement>('room-key-label'),
  roomKeyInput: byId<HTMLInputElement>('room-key-input'),
  accountInput: byId<HTMLInputElement>('account-input'),
  registerCheck: byId<HTMLInputElement>('register-check'),
  plainHint: byId<HTMLParagraphElement>('plain-hint'),
  loginError: byId<HTMLParagraphElement>('login-error'),
  app: byId<HTMLDivElement>('app'),
  menuBtn: byId<HTMLButtonElement>('menu-btn'),
  sidebar: byId<HTMLElement>('sidebar'),
  roomTitle: byId<HTMLHeadingElement>('room-title'),
  roomModes: byId<HTMLSpanElement>('room-modes'),
  lock: byId<HTMLSpanElement>('lock'),
  topic: byId<HTMLSpanElement>('topic'),
  status: byId<HTMLSpanElement>('status'),
  me: byId<HTMLSpanElement>('me'),
  roomList: byId<HTMLUListElement>('room-list'),
  otherRooms: byId<HTMLUListElement>('other-rooms'),
  joinForm: byId<HTMLFormElement>('join-form'),
  joinInput: byId<HTMLInputElement>('join-input'),
  joinKey: byId<HTMLInputElement>('join-key'),
  memberCount: byId<HTMLSpanElement>('member-count'),
  memberList: byId<HTMLUListElement>('member-list'),
  chat: byId<HTMLElement>('chat'),
  messages: byId<HTMLDivElement>('messages'),
  noRoom: byId<HTMLDivElement>('no-room'),
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
 * What the login form asked for and the server has not answered yet. The chat shows once the
 * nick, the room and the account (a register, or a login on an open connection) are settled;
 * a refusal of any goes back to the form.
 */
let login: { room: string; nick: string; nickPending: boolean; roomPending: boolean; accountPending: boolean } | null = null;
/** A room that a try of the login form added; a later try for another room drops it if never joined. */
let formRoom: string | null = null;

/** The password the login form asked to register the nick with, once the hello has got us in. */
let pendingRegister: string | null = null;
/** The nickKey of the account this connection is logged in to (null: none). */
let loggedInAs: string | null = null;
/** The last hello carried an account password (a LOCKED_OUT may then be the account's). */
let helloAccount = false;
/** Which password the server refused last: LOCKED_OUT does not say whose throttle it is. */
let lastRefusal: 'server' | 'account' | null = null;
/** The member whose operator menu is open (nickKey), kept open across the list's redraws. */
let openMenu: string | null = null;

/** As the server compares nicks (nickKey in src/protocol/text.ts, which the page cannot import). */
function nickKey(n: string): string {
  return n.normalize('NFKC').toLowerCase();
}

function savedAccount(): { nick: string; password: string } | null {
  try {
    const v = JSON.parse(sessionStorage.getItem(STORE_ACCOUNT) ?? 'null') as { nick?: unknown; password?: unknown } | null;
    return v && typeof v.nick === 'string' && typeof v.password === 'string' ? { nick: v.nick, password: v.password } : null;
  } catch {
    return null;
  }
}

function keepAccount(account: { nick: string; password: string } | null): void {
  if (account === null) sessionStorage.removeItem(STORE_ACCOUNT);
  else sessionStorage.setItem(STORE_ACCOUNT, JSON.stringify(account));
}

/** The hello, with the server password when the server asked for one, and the account's when we have one. */
function hello(): object {
  const out: Record<string, unknown> = { type: 'hello', nick, rooms: [] };
  const password = sessionStorage.getItem(STORE_PASSWORD);
  if (password !== null) out.serverPassword = password;
  const account = savedAccount();
  // Only the account's own nick logs in: a nick taken since (or a variant after a clash) is just a nick.
  if (account && nickKey(account.nick) === nickKey(nick)) out.password = account.password;
  helloAccount = out.password !== undefined;
  return out;
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
  r = {
    name,
    lastSeq: 0,
    seen: new Set(),
    local: new Set(),
    members: new Set(),
    ops: new Set(),
    loggedIn: new Set(),
    modes: '',
    whoTimer: null,
    topic: '',
    pane,
    images: new Map(),
    unread: 0,
    item,
    joined: false,
  };
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
  openMenu = null;
  ui.noRoom.hidden = true;
  r.pane.hidden = false;
  r.item.classList.add('current');
  r.unread = 0;
  renderBadge(r);
  ui.roomTitle.textContent = `#${r.name}`;
  ui.topic.textContent = r.topic;
  renderModes();
  renderMembers();
  toEnd();
  document.title = `#${r.name} · roomcast`;
}

/** `key`: the room's key, when it has one (kept for the joins after a reconnect). */
function join(name: string, key?: string): void {
  const r = roomState(name);
  if (key !== undefined) r.key = key;
  if (conn.isOpen && registered) conn.send(joinRequest(r));
  select(name);
}

/** Room names as the server keys them (normalizeRoom in src/protocol/text.ts): no "#", NFC, lower case. */
function roomName(typed: string): string {
  return typed.trim().replace(/^#/, '').normalize('NFC').toLowerCase();
}

/** A join names its room in its id, so a refusal (ROOM_INVALID, TOO_MANY_ROOMS) can be tied to it. */
function joinRequest(r: RoomState): object {
  const req: Record<string, unknown> = { type: 'join', room: r.name, id: `join:${r.name}` };
  if (r.key !== undefined) req.key = r.key;
  if (r.lastSeq > 0) req.after = r.lastSeq;
  if (r.lastSeq > 0 && r.epoch !== undefined) req.epoch = r.epoch;
  return req;
}

function part(name: string): void {
  const r = rooms.get(name);
  if (!r) return;
  if (conn.isOpen && registered && r.joined) conn.send({ type: 'part', room: name });
  forget(r);
}

function forget(r: RoomState): void {
  rooms.delete(r.name);
  if (r.whoTimer !== null) window.clearTimeout(r.whoTimer);
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
      ui.noRoom.hidden = false;
      renderModes();
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
  const r = current;
  const names = [...r.members].sort((a, b) => a.localeCompare(b));
  ui.memberCount.textContent = `(${names.length})`;
  const amOp = r.ops.has(nickKey(nick));
  names.forEach((n, i) => ui.memberList.append(memberItem(r, n, amOp, i)));
}

/** A member: "@" for an operator, a tick when logged in; for an operator (me), a menu on the others. */
function memberItem(r: RoomState, n: string, amOp: boolean, index: number): HTMLLIElement {
  const key = nickKey(n);
  const me = key === nickKey(nick);
  const op = r.ops.has(key);
  const account = r.loggedIn.has(key);
  const li = el('li', ['member', me ? 'me' : '', op ? 'op' : '', account ? 'logged-in' : ''].filter(Boolean).join(' '));
  li.dataset.nick = n;
  const name = el('span', 'member-name');
  // The marks are for the eye (with a title for the mouse); a screen reader hears the words.
  if (op) name.append(mark('op-mark', '@', `Operator of #${r.name}`));
  name.append(document.createTextNode(n));
  if (op) name.append(el('span', 'sr-only', ' (operator)'));
  if (account) name.append(mark('account-mark', '✓', 'Logged in to this registered nick'), el('span', 'sr-only', ' (logged in)'));
  li.append(name);
  if (amOp && !me) li.append(...memberMenu(r, n, index));
  return li;
}

function mark(cls: string, symbol: string, title: string): HTMLSpanElement {
  const m = el('span', cls, symbol);
  m.title = title;
  m.setAttribute('aria-hidden', 'true');
  return m;
}

/** The "⋯" button and the actions it shows (in the list's flow, so the sidebar never clips them). */
function memberMenu(r: RoomState, n: string, index: number): HTMLElement[] {
  const key = nickKey(n);
  const toggle = el('button', 'member-menu-btn', '⋯');
  toggle.type = 'button';
  toggle.title = `Operator actions for ${n}`;
  toggle.setAttribute('aria-label', `Operator actions for ${n}`);
  const panel = el('div', 'member-actions');
  panel.id = `member-actions-${index}`;
  toggle.setAttribute('aria-controls', panel.id);
  const show = (open: boolean): void => {
    openMenu = open ? key : null;
    panel.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
  };
  const action = (label: string, cls: string, run: () => void): HTMLButtonElement => {
    const b = el('button', `member-action ${cls}`, label);
    b.type = 'button';
    b.addEventListener('click', run);
    return b;
  };
  const actions = (): void =>
    panel.replaceChildren(
      action('Kick', 'kick', () => {
        show(false);
        moderate({ type: 'kick', nick: n, room: r.name });
      }),
      action('Mute 10 min', 'mute', () => {
        show(false);
        moderate({ type: 'mute', nick: n, minutes: 10, room: r.name });
      }),
      action('Ban…', 'ban', () => {
        // A ban keeps them out (their address and account) until lifted: asked once more, here.
        const yes = action(`Ban ${n}`, 'ban-confirm danger', () => {
          show(false);
          moderate({ type: 'ban', mask: n, room: r.name });
        });
        const no = action('Cancel', 'ban-cancel', () => {
          actions();
          toggle.focus();
        });
        panel.replaceChildren(el('span', 'confirm-text', `Ban ${n} from #${r.name}? They are put out and kept out until an operator lifts the ban.`), yes, no);
        no.focus();
      }),
    );
  actions();
  show(openMenu === key);
  toggle.addEventListener('click', () => {
    const open = panel.hidden;
    for (const other of ui.memberList.querySelectorAll<HTMLElement>('.member-actions')) other.hidden = true;
    for (const other of ui.memberList.querySelectorAll<HTMLElement>('.member-menu-btn')) other.setAttribute('aria-expanded', 'false');
    if (open) actions();
    show(open);
  });
  return [toggle, panel];
}

/** An operator's command; what it did comes back as a `moderation` event, a refusal as an error line. */
function moderate(cmd: Record<string, unknown>): void {
  if (!conn.isOpen || !registered) {
    notice(current, 'Not connected: nothing was done. Reconnecting…', 'notice error');
    return;
  }
  conn.send(cmd);
}

/** The current room's modes in the header, with what they mean for the mouse and screen readers. */
function renderModes(): void {
  const modes = current?.modes ?? '';
  ui.roomModes.hidden = modes === '';
  ui.roomModes.textContent = modes;
  const words = modeWords(modes);
  ui.roomModes.title = words;
  ui.roomModes.setAttribute('aria-label', `Room modes: ${words}`);
}

const MODE_WORDS: Record<string, [on: string, off: string]> = {
  i: ['invite only', 'anyone may join'],
  t: ['only operators set the topic', 'anyone may set the topic'],
  k: ['joining needs a key', 'no key needed'],
};

/** "+it" → "invite only, only operators set the topic"; "-k" → "no key needed". */
function modeWords(change: string): string {
  const words: string[] = [];
  let on = true;
  for (const c of change) {
    if (c === '+' || c === '-') on = c === '+';
    else words.push(MODE_WORDS[c]?.[on ? 0 : 1] ?? `${on ? '+' : '-'}${c}`);
  }
  return words.join(', ');
}

/** What changed between two mode strings, as "+i -t" ("" when nothing did). */
function modeChange(before: string, after: string): string {
  const flags = (m: string) => new Set(m.replace(/[+-]/g, ''));
  const was = flags(before);
  const now = flags(after);
  const added = [...now].filter((c) => !was.has(c)).join('');
  const removed = [...was].filter((c) => !now.has(c)).join('');
  return [added && `+${added}`, removed && `-${removed}`].filter(Boolean).join(' ');
}

/** Asks who is in a room (with its ops and accounts) a little after members came in: one ask for a burst. */
function refreshWho(r: RoomState): void {
  if (r.whoTimer !== null) return;
  r.whoTimer = window.setTimeout(() => {
    r.whoTimer = null;
    if (rooms.get(r.name) === r && r.joined && conn.isOpen && registered) conn.send({ type: 'who', room: r.name });
  }, 500);
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
  if (!target && !ui.app.hidden) {
    // In the chat with no room left (kicked from the last one, say): said where the rooms were.
    ui.noRoom.hidden = false;
    ui.noRoom.append(el('div', `msg ${cls}`, text));
    return;
  }
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
      lastRefusal = null;
      conn.registered();
      setNick(ev.nick);
      loggedInAs = helloAccount ? nickKey(ev.nick) : null;
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
      // The nick is ours now: the form's "register" makes it an account (the form waits for that too).
      if (login?.accountPending && pendingRegister !== null) sendRegister();
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
        r.loggedIn = new Set((ev.loggedIn ?? []).map(nickKey));
        r.ops = new Set((ev.ops ?? []).map(nickKey));
        r.modes = ev.modes ?? '';
        r.topic = ev.topic ?? '';
        if (!current) select(r.name);
        if (login?.room === r.name) {
          login.roomPending = false;
          settleLogin();
        }
      } else {
        r.members.add(ev.nick);
        notice(r, `${ev.nick} joined`, 'notice join', false);
        refreshWho(r);
      }
      if (r === current) {
        renderMembers();
        renderModes();
        ui.topic.textContent = r.topic;
      }
      break;
    }
    case 'parted': {
      const r = rooms.get(ev.room);
      if (!r) break;
      const why = ev.reason ? ` (${ev.reason})` : '';
      if (ev.self || (ev.kickedBy !== undefined && nickKey(ev.nick) === nickKey(nick))) {
        // Put out by an operator: the room goes from the page, and is not joined again by itself.
        forget(r);
        if (ev.kickedBy !== undefined) notice(current, `You were kicked from #${r.name} by ${ev.kickedBy}${why}.`, 'notice error kicked');
        break;
      }
      const wasHere = r.members.delete(ev.nick);
      r.ops.delete(nickKey(ev.nick));
      r.loggedIn.delete(nickKey(ev.nick));
      // The kicker hears of a kick twice (the room's word and the answer to the kick): told once.
      if (ev.kickedBy !== undefined && !wasHere) break;
      if (ev.kickedBy !== undefined) notice(r, `${nickKey(ev.kickedBy) === nickKey(nick) ? 'You' : ev.kickedBy} kicked ${ev.nick}${why}`, 'notice kick');
      else notice(r, `${ev.nick} ${ev.quit ? 'quit' : 'left'}${why}`, 'notice part', false);
      if (r === current) renderMembers();
      break;
    }
    case 'nick': {
      if (ev.self || ev.old === nick) setNick(ev.nick);
      if (ev.self && ev.id === LOGIN_NICK && login) {
        login.nickPending = false;
        // Registered only now that the nick is ours: sent earlier, it would register the old one.
        if (login.accountPending && pendingRegister !== null) sendRegister();
        settleLogin();
      }
      if (ev.self && loggedInAs !== nickKey(ev.nick)) loggedInAs = null;
      for (const r of rooms.values()) {
        if (!r.members.delete(ev.old)) continue;
        r.members.add(ev.nick);
        if (r.ops.delete(nickKey(ev.old))) r.ops.add(nickKey(ev.nick));
        // Logged in means on the account's own nick: another nick is not it (the next `who` says).
        r.loggedIn.delete(nickKey(ev.old));
        if (ev.self && loggedInAs !== null) r.loggedIn.add(loggedInAs);
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
      r.loggedIn = new Set((ev.loggedIn ?? []).map(nickKey));
      r.ops = new Set((ev.ops ?? []).map(nickKey));
      if (r === current) renderMembers();
      break;
    }
    case 'moderation': {
      const r = rooms.get(ev.room);
      if (!r) break;
      const before = r.modes;
      const target = ev.target === undefined ? undefined : nickKey(ev.target);
      if (ev.action === 'op' && target !== undefined) r.ops.add(target);
      if (ev.action === 'deop' && target !== undefined) r.ops.delete(target);
      if (typeof ev.modes === 'string') r.modes = ev.modes;
      notice(r, moderationText(ev, r, before), 'notice moderation');
      if (r === current) {
        renderMembers();
        renderModes();
      }
      break;
    }
    case 'mode': {
      const r = rooms.get(ev.room);
      if (!r) break;
      r.modes = ev.modes;
      r.ops = new Set(ev.ops.map(nickKey));
      if (ev.id === MODE_QUERY) {
        const words = ev.modes ? `${ev.modes} (${modeWords(ev.modes)})` : 'none';
        notice(r, `Modes of #${r.name}: ${words}. Operators: ${ev.ops.length ? ev.ops.join(', ') : 'none'}.`);
      }
      if (r === current) {
        renderMembers();
        renderModes();
      }
      break;
    }
    case 'bans': {
      const r = rooms.get(ev.room) ?? current;
      if (ev.bans.length === 0 && ev.mutes.length === 0) notice(r, `Nobody is banned or muted in #${ev.room}.`);
      for (const b of ev.bans) notice(r, `Banned from #${ev.room}: ${b.mask}${b.nick && b.nick !== b.mask ? ` (${b.nick})` : ''}, by ${b.by}${b.reason ? `: ${b.reason}` : ''}`);
      for (const m of ev.mutes) notice(r, `Muted in #${ev.room}: ${m.nick}, by ${m.by}${m.until ? `, until ${clockTime(m.until)}` : ''}`);
      break;
    }
    case 'rooms':
      renderOtherRooms(ev.rooms);
      break;
    case 'privmsg':
      notice(current, `${ev.from === nick ? `→ ${ev.to}` : `${ev.from} (private)`}: ${ev.text}`, 'notice private');
      break;
    case 'notice':
      // The server's words for these name chat commands; the page says it its own way.
      if (ev.id === LOGIN_REGISTER) accountDone(`Registered ${nick}: nobody else can take this nick now. Next time, give its password on the login form.`, true);
      else if (ev.id === LOGIN_ACCOUNT) accountDone(`You are logged in as ${nick}.`, false);
      else notice(current, ev.text);
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

/** An operator's act in words: "alice muted bob for 10 min", "alice set mode +i (invite only)". */
function moderationText(ev: EventOf<'moderation'>, r: RoomState, modesBefore: string): string {
  const mine = (n: string): boolean => nickKey(n) === nickKey(nick);
  const by = mine(ev.by) ? 'You' : ev.by;
  const target = ev.target ?? '';
  const whom = mine(target) ? 'you' : target;
  let text: string;
  switch (ev.action) {
    case 'op':
      text = `${by} made ${whom} an operator`;
      break;
    case 'deop':
      text = `${by} took operator status from ${whom}`;
      break;
    case 'ban':
      text = ev.nick ? `${by} banned ${mine(ev.nick) ? 'you' : ev.nick} (${maskWords(target)})` : `${by} banned ${maskWords(target)}`;
      break;
    case 'unban':
      text = `${by} lifted the ban on ${maskWords(target)}`;
      break;
    case 'mute':
      text = `${by} muted ${whom}${ev.until === undefined ? '' : ` ${muteLength(ev.until)}`}`;
      break;
    case 'unmute':
      text = `${by} unmuted ${whom}`;
      break;
    case 'invite':
      text = `${by} invited ${whom} to #${r.name}`;
      break;
    case 'key':
      text = `${by} set a key on #${r.name}: joining needs it now`;
      break;
    case 'mode': {
      // The change asked for; from an older server, worked out from the modes.
      const asked = ev.change !== undefined && /^(?:[+-][a-z]+)+$/.test(ev.change) ? ev.change : '';
      const change = asked || (ev.modes === undefined ? '' : modeChange(modesBefore, ev.modes));
      return change ? `${by} set mode ${change} (${modeWords(change)})` : `${by} set the modes of #${r.name} to ${ev.modes || 'none'}`;
    }
    default:
      text = `${by}: ${String(ev.action)} ${target}`.trim();
  }
  return ev.reason ? `${text} (${ev.reason})` : text;
}

/** A ban mask in words: "address:10.0.0.7,account:bob" → "address 10.0.0.7 and account bob"; a nick as it is. */
function maskWords(mask: string): string {
  const parts = mask.split(',').map((p) => {
    const m = /^(address|account|nick):(.+)$/.exec(p);
    return m ? `${m[1]} ${m[2]}` : p;
  });
  return parts.join(' and ');
}

/** "for 10 min" (counted from now, as a mute is told when it is made), or "until 14:05" for a long one. */
function muteLength(until: number): string {
  const minutes = Math.max(1, Math.round((until - Date.now()) / 60_000));
  return minutes <= 90 ? `for ${minutes} min` : `until ${clockTime(until)}`;
}

function sendRegister(): void {
  if (pendingRegister !== null) conn.send({ type: 'register', password: pendingRegister, id: LOGIN_REGISTER });
}

/** The form's /register or /login went through: this tab's reconnects log in from now on. */
function accountDone(text: string, registeredNow: boolean): void {
  if (registeredNow && pendingRegister !== null) keepAccount({ nick, password: pendingRegister });
  pendingRegister = null;
  loggedInAs = nickKey(nick);
  for (const r of rooms.values()) if (r.members.has(nick)) r.loggedIn.add(loggedInAs);
  renderMembers();
  if (login) {
    login.accountPending = false;
    settleLogin();
  }
  notice(current, text);
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
  if (ev.code === 'LOGIN_FAILED') lastRefusal = 'account';
  if (ev.code === 'PASSWORD_REQUIRED' || ev.code === 'PASSWORD_WRONG') lastRefusal = 'server';
  if (isAccountRefusal(ev)) {
    accountRefused(ev);
    return;
  }
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
    if (KEY_CODES.has(ev.code) && login?.room === name) {
      // The form's room has a key: the form asks for it.
      ui.roomKeyLabel.hidden = false;
      ui.roomKeyInput.hidden = false;
      loginFailed(ev.code === 'ROOM_KEY_REQUIRED' ? `#${name} needs a key: ask one of its members for it.` : ev.message, ui.roomKeyInput);
      return;
    }
    if (KEY_CODES.has(ev.code)) {
      askKey(name, ev.code === 'ROOM_KEY_REQUIRED' ? `#${name} needs a key: type it in the key box under Rooms and press Join.` : ev.message);
      return;
    }
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
 * An answer about the account on the form: the login form's /register or /login, or a hello
 * (or the form's nick change) refused for the account. LOCKED_OUT does not say whose throttle
 * it is: the account's when the hello carried its password and the server password was not
 * the last one refused.
 */
function isAccountRefusal(ev: { id?: string | number; code: string }): boolean {
  if (ev.id === LOGIN_REGISTER || ev.id === LOGIN_ACCOUNT) return true;
  if (ev.code === 'NICK_REGISTERED' || ev.code === 'LOGIN_FAILED') return !registered || ev.id === LOGIN_NICK;
  return !registered && ev.code === 'LOCKED_OUT' && helloAccount && lastRefusal !== 'server';
}

/** Back to the form, in its own words; the password field (or the nick, when that is the trouble) gets the focus. */
function accountRefused(ev: { code: string; message: string }): void {
  const wanted = login?.nick ?? nick;
  pendingRegister = null;
  if (ev.code !== 'NICK_REGISTERED') keepAccount(null);
  let text: string;
  let field = ui.accountInput;
  switch (ev.code) {
    case 'NICK_REGISTERED':
      // Registered by someone (maybe us, earlier): log in to it rather than register it again.
      ui.registerCheck.checked = false;
      text = `"${wanted}" is a registered nick: type its password to log in, or pick another nick.`;
      break;
    case 'LOGIN_FAILED':
      text = 'Wrong nick or password. Try again; after a few wrong tries, each one makes you wait longer.';
      break;
    case 'REGISTER_GUEST':
      text = `"${wanted}" is a guest nick, which cannot be registered: pick a nick of your own.`;
      field = ui.nickInput;
      break;
    default:
      // PASSWORD_WEAK and LOCKED_OUT say what to do in words for a form; a nick refused by
      // /login (taken by someone else) goes to the nick field.
      text = NICK_FIXES.has(ev.code) ? formNickError(ev) : ev.message;
      if (NICK_FIXES.has(ev.code)) field = ui.nickInput;
  }
  loginFailed(text, field);
}

/** A room the join box asked for needs its key: the box shows a key field, focused, and says why. */
function askKey(name: string, text: string): void {
  ui.joinInput.value = name;
  ui.joinKey.hidden = false;
  ui.joinKey.value = '';
  document.body.classList.add('show-sidebar');
  notice(current, text, 'notice error');
  ui.joinKey.focus();
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
  if (!login || login.nickPending || login.roomPending || login.accountPending) return;
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
      if (rest[0]) join(roomName(rest[0]), rest[1]);
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
    case 'op':
    case 'deop':
    case 'unmute':
    case 'invite':
      if (current && rest[0]) moderate({ type: cmd.toLowerCase(), nick: rest[0], room: current.name });
      break;
    case 'kick':
      if (current && rest[0]) moderate({ type: 'kick', nick: rest[0], room: current.name, ...(rest.length > 1 ? { reason: rest.slice(1).join(' ') } : {}) });
      break;
    case 'ban':
      if (current && rest[0]) moderate({ type: 'ban', mask: rest[0], room: current.name, ...(rest.length > 1 ? { reason: rest.slice(1).join(' ') } : {}) });
      break;
    case 'unban':
      if (current && rest[0]) moderate({ type: 'unban', mask: rest[0], room: current.name });
      break;
    case 'mute': {
      const minutes = Number(rest[1]);
      if (current && rest[0]) moderate({ type: 'mute', nick: rest[0], room: current.name, ...(Number.isInteger(minutes) && minutes > 0 ? { minutes } : {}) });
      break;
    }
    case 'mode':
      if (current) moderate(rest[0] ? { type: 'mode', modes: rest[0], room: current.name } : { type: 'mode', room: current.name, id: MODE_QUERY });
      break;
    case 'key':
      if (current && rest[0]) moderate({ type: 'key', key: rest[0], room: current.name });
      break;
    case 'bans':
      if (current) moderate({ type: 'bans', room: current.name });
      break;
    default:
      notice(
        current,
        'Commands: /join ROOM [KEY], /part, /me TEXT, /nick NAME, /topic [TEXT], /msg NICK TEXT. ' +
          'Operators: /kick NICK [REASON], /mute NICK [MINUTES], /unmute NICK, /ban NICK [REASON], /unban MASK, /bans, /op NICK, /deop NICK, /invite NICK, /mode [+i|-i|+t|-t|-k], /key SECRET. ' +
          'Start a message with // to send a literal /.',
      );
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

/** The lock in the header: whether this page (and so its WebSocket) came over TLS. */
function showLock(): void {
  const tls = location.protocol === 'https:';
  ui.lock.classList.toggle('secure', tls);
  ui.lock.classList.toggle('insecure', !tls);
  const words = tls ? 'Encrypted (TLS)' : 'Not encrypted: this page and the chat travel as plain http';
  ui.lock.title = words;
  ui.lock.setAttribute('aria-label', words);
  ui.plainHint.hidden = tls;
}

function start(): void {
  showLock();
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
    const password = ui.accountInput.value;
    const register = ui.registerCheck.checked;
    if (register && password === '') {
      ui.loginError.textContent = 'Type the password to register your nick with.';
      ui.accountInput.focus();
      return;
    }
    ui.loginError.textContent = '';
    pendingRegister = register ? password : null;
    // An earlier try's room, never joined, is not wanted now: this try names the room.
    if (formRoom !== null && formRoom !== room) {
      const old = rooms.get(formRoom);
      if (old && !old.joined) forget(old);
    }
    if (!rooms.has(room)) formRoom = room;
    else if (formRoom !== room) formRoom = null;
    const r = roomState(room);
    if (!ui.roomKeyInput.hidden && ui.roomKeyInput.value !== '') r.key = ui.roomKeyInput.value;
    select(room);
    if (registered) {
      // Back here after a refusal: still connected, so ask for what changed. A password
      // (without "register") logs in to the nick, which takes it.
      const logIn = password !== '' && !register && loggedInAs !== nickKey(n);
      login = { room, nick: n, nickPending: !logIn && n !== nick, roomPending: !r.joined, accountPending: logIn || register };
      if (logIn) {
        keepAccount({ nick: n, password });
        conn.send({ type: 'login', nick: n, password, id: LOGIN_ACCOUNT });
      } else if (login.nickPending) conn.send({ type: 'nick', nick: n, id: LOGIN_NICK });
      if (register && !login.nickPending) sendRegister();
      if (login.roomPending) conn.send(joinRequest(r));
      settleLogin();
      return;
    }
    login = { room, nick: n, nickPending: false, roomPending: true, accountPending: register };
    nick = n;
    if (!ui.passwordInput.hidden) sessionStorage.setItem(STORE_PASSWORD, ui.passwordInput.value);
    // A nick being registered has no account yet (the hello would fail to log in to it); an
    // empty field keeps a password this tab already has for the nick, as the server password's.
    if (register) keepAccount(null);
    else if (password !== '') keepAccount({ nick: n, password });
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
    const key = !ui.joinKey.hidden && ui.joinKey.value !== '' ? ui.joinKey.value : undefined;
    if (name) join(name, key);
    ui.joinInput.value = '';
    ui.joinKey.value = '';
    ui.joinKey.hidden = true;
    document.body.classList.remove('show-sidebar');
  });
  ui.menuBtn.addEventListener('click', () => document.body.classList.toggle('show-sidebar'));
  ui.registerCheck.addEventListener('change', () => {
    // So a password manager offers to save a new password rather than fill in an old one.
    ui.accountInput.autocomplete = ui.registerCheck.checked ? 'new-password' : 'current-password';
  });
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
