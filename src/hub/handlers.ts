/**
 * What each command does, one entry per command type. `room: true` means the command acts on
 * a room the sender is in (the named one or the current one); Hub.handle resolves and checks
 * that once, so no handler repeats it.
 */
import { RoomcastError } from '../protocol/errors.js';
import type { Command } from '../protocol/commands.js';
import type { RoomInfo } from '../protocol/events.js';
import { HELP } from '../protocol/commands.js';
import { nickKey, sanitize, TOPIC_MAX } from '../protocol/text.js';
import type { Hub } from './hub.js';
import type { Room } from './room.js';
import type { Session } from './session.js';

type Of<T extends Command['type']> = Extract<Command, { type: T }>;

interface Handler<T extends Command['type']> {
  room?: true;
  run(hub: Hub, s: Session, cmd: Of<T>, room: Room): void;
}

type Table = { [T in Command['type']]: Handler<T> };

/** User input shown back in an error: cut short, and neutralised like anything else shown. */
export function echoed(input: string): string {
  return sanitize(input.slice(0, 40));
}

export function checkText(hub: Hub, text: string): void {
  if (text.trim() === '') throw new RoomcastError('EMPTY_MESSAGE');
  if (text.length > hub.opts.maxTextLength) throw new RoomcastError('TEXT_TOO_LONG', hub.opts.maxTextLength);
}

export const HANDLERS: Table = {
  hello: {
    run() {
      throw new RoomcastError('ALREADY_REGISTERED');
    },
  },

  register: {
    run(hub, s, cmd) {
      hub.registerAccount(s, cmd.password, cmd.id);
    },
  },

  login: {
    run(hub, s, cmd) {
      hub.login(s, cmd.nick, cmd.password, cmd.id);
    },
  },

  pass: {
    run(hub, s, cmd) {
      hub.reply(s, cmd.id, { type: 'notice', text: 'You are in already: the server password is given once, before anything else.' });
    },
  },

  nick: {
    run(hub, s, cmd) {
      hub.rename(s, cmd.nick, cmd.id);
    },
  },

  join: {
    run(hub, s, cmd) {
      hub.enter(s, hub.checkRoom(cmd.room), cmd);
    },
  },

  password: {
    run(hub, s, cmd) {
      hub.changePassword(s, cmd.password, cmd.id);
    },
  },

  // Operators' commands (hub/moderation.ts checks who may).
  op: { room: true, run: (hub, s, cmd, room) => hub.moderation.op(s, room, cmd.nick, cmd.id) },
  deop: { room: true, run: (hub, s, cmd, room) => hub.moderation.deop(s, room, cmd.nick, cmd.id) },
  kick: { room: true, run: (hub, s, cmd, room) => hub.moderation.kick(s, room, cmd.nick, cmd.reason, cmd.id) },
  ban: { room: true, run: (hub, s, cmd, room) => hub.moderation.ban(s, room, cmd.mask, cmd.reason, cmd.id) },
  unban: { room: true, run: (hub, s, cmd, room) => hub.moderation.unban(s, room, cmd.mask, cmd.id) },
  bans: { room: true, run: (hub, s, cmd, room) => hub.moderation.bans(s, room, cmd.id) },
  mute: { room: true, run: (hub, s, cmd, room) => hub.moderation.mute(s, room, cmd.nick, cmd.minutes, cmd.id) },
  unmute: { room: true, run: (hub, s, cmd, room) => hub.moderation.unmute(s, room, cmd.nick, cmd.id) },
  invite: { room: true, run: (hub, s, cmd, room) => hub.moderation.invite(s, room, cmd.nick, cmd.id) },
  mode: { room: true, run: (hub, s, cmd, room) => hub.moderation.mode(s, room, cmd.modes, cmd.id) },
  key: { room: true, run: (hub, s, cmd, room) => hub.moderation.key(s, room, cmd.key, cmd.id) },

  part: {
    room: true,
    run(hub, s, cmd, room) {
      const reason = cmd.reason === undefined ? undefined : sanitize(cmd.reason);
      hub.part(s, room, reason);
      hub.reply(s, cmd.id, { type: 'parted', room: room.name, nick: s.nick, self: true, reason });
    },
  },

  message: {
    room: true,
    run(hub, s, cmd, room) {
      hub.moderation.checkVoice(s, room);
      hub.say(room, s.nick, cmd.text, cmd.action, s, cmd.id);
    },
  },

  privmsg: {
    run(hub, s, cmd) {
      const text = sanitize(cmd.text);
      checkText(hub, text);
      const to = hub.sessions.get(nickKey(cmd.to));
      if (!to) {
        // Perhaps on another node of a cluster (NO_SUCH_NICK on a single server).
        const elsewhere = { type: 'privmsg' as const, from: s.nick, to: cmd.to, text, time: hub.opts.now(), ...(cmd.action ? { action: true as const } : {}) };
        hub.sendPrivate(s, cmd.to, elsewhere, cmd.id);
        hub.stats.privmsgs++;
        return;
      }
      const event = { type: 'privmsg' as const, from: s.nick, to: to.nick, text, time: hub.opts.now() };
      const withAction = cmd.action ? { ...event, action: true as const } : event;
      if (to !== s) hub.send(to, withAction);
      hub.reply(s, cmd.id, withAction);
      hub.stats.privmsgs++;
    },
  },

  image: {
    room: true,
    run(hub, s, cmd, room) {
      // The transport has read exactly `size` bytes after the header line.
      if (!cmd.data) throw new RoomcastError('BAD_MESSAGE', 'the image bytes are missing');
      hub.moderation.checkVoice(s, room);
      hub.images.post(room, s.nick, cmd.name, cmd.data, s, cmd.id);
    },
  },

  bot: {
    run(hub, s, cmd) {
      const status = hub.images.botStatus() ?? { nick: 'classifier', state: 'off' as const, reason: 'this server runs no classifier bot' };
      hub.reply(s, cmd.id, { type: 'bot', ...status });
    },
  },

  rooms: {
    run(hub, s, cmd) {
      const answer = (list: RoomInfo[]): void => {
        if (!s.detached) hub.reply(s, cmd.id, { type: 'rooms', rooms: list.map(({ room, members, topic }) => ({ room, members, topic })) });
      };
      const list = hub.roomList();
      if (list instanceof Promise) void list.then(answer);
      else answer(list);
    },
  },

  who: {
    run(hub, s, cmd) {
      let room: Room | undefined;
      if (cmd.room === undefined) room = hub.memberRoom(s, undefined);
      else {
        const name = hub.checkRoom(cmd.room);
        room = hub.rooms.get(name);
        if (!room) throw new RoomcastError('NO_SUCH_ROOM', name);
      }
      const answer = (): void => {
        if (s.detached) return;
        const ops = hub.moderation.opsOf(room);
        hub.reply(s, cmd.id, { type: 'who', room: room.name, members: hub.memberNicks(room), ...hub.loggedIn(room), ...(ops.length > 0 ? { ops } : {}), topic: room.topic });
      };
      // Members elsewhere in a cluster: whether they are logged in is asked of the store first.
      if (room.remote && room.remote.size > 0) void hub.learnRegistered(room.remote.keys()).then(answer);
      else answer();
    },
  },

  topic: {
    room: true,
    run(hub, s, cmd, room) {
      if (cmd.topic === undefined) {
        hub.reply(s, cmd.id, { type: 'topic', room: room.name, topic: room.topic });
        return;
      }
      if (cmd.topic.length > TOPIC_MAX) throw new RoomcastError('TEXT_TOO_LONG', TOPIC_MAX);
      hub.moderation.checkTopic(s, room);
      hub.setTopic(room, sanitize(cmd.topic).trim(), s);
      hub.reply(s, cmd.id, { type: 'topic', room: room.name, topic: room.topic, nick: s.nick });
    },
  },

  history: {
    room: true,
    run(hub, s, cmd, room) {
      // A page: what memory holds, or a store page when that is larger.
      const limit = Math.min(Math.max(cmd.limit ?? hub.opts.replay, 0), Math.max(hub.opts.historySize, hub.opts.pageSize));
      // Asked for, an empty history is answered too: the text wire says there is nothing.
      hub.sendHistory(s, room, cmd.after ?? room.seq - limit, limit, cmd.id);
    },
  },

  search: {
    room: true,
    run(hub, s, cmd, room) {
      hub.search(s, room, cmd);
    },
  },

  help: {
    run(hub, s, cmd) {
      hub.reply(s, cmd.id, { type: 'help', commands: HELP });
    },
  },

  ping: {
    run(hub, s, cmd) {
      hub.reply(s, cmd.id, { type: 'pong', time: hub.opts.now() });
    },
  },

  quit: {
    run(hub, s, cmd) {
      const reason = cmd.reason ? `quit: ${sanitize(cmd.reason)}` : 'quit';
      hub.detach(s, reason);
      s.link.close({ code: 'QUIT', reason: 'Goodbye.' });
    },
  },
};
