/**
 * A scripted roomcast server behind TLS on 127.0.0.1: enough of the JSON protocol for a client
 * to register, join, post and quit, and a record of every byte each connection sent, so a test
 * can tell that nothing (not a nick, not a password) went to a server that was not trusted.
 */
import net from 'node:net';
import tls from 'node:tls';
import { HOST } from './clients.js';
import type { TestCert } from './tls-certs.js';

export type Send = (event: object) => void;

export class ScriptedTlsServer {
  port = 0;
  /** Per connection (from the end of its TLS handshake): the lines it sent, parsed. */
  readonly received: Record<string, unknown>[][] = [];
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private seq = 0;

  /** Listens with `cert` (on `port`, or a free one). A server without `cert` speaks clear text. */
  async start(cert: TestCert | null, port = 0): Promise<void> {
    const onSocket = (socket: net.Socket): void => this.serve(socket);
    this.server = cert ? tls.createServer({ cert: cert.cert, key: cert.key }, onSocket) : net.createServer(onSocket);
    await new Promise<void>((resolve) => this.server!.listen(port, HOST, resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Stops, dropping every connection (the client sees its link lost). */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  /** Stops and listens again on the same port, with another certificate. */
  async restart(cert: TestCert): Promise<void> {
    await this.stop();
    await this.start(cert, this.port);
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    const lines = this.received[this.received.push([]) - 1]!;
    const send: Send = (e) => void socket.write(JSON.stringify(e) + '\n');
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const cmd = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        lines.push(cmd);
        this.answer(cmd, send, socket);
      }
    });
  }

  /** A server's answers, cut down to what join and post use. */
  private answer(cmd: Record<string, unknown>, send: Send, socket: net.Socket): void {
    const nick = typeof cmd.nick === 'string' ? cmd.nick : 'guest1';
    const id = cmd.id;
    switch (cmd.type) {
      case 'hello':
        send({ type: 'welcome', nick, server: 'scripted', version: '0', history: 'h1', rooms: ['lobby'], limits: {} });
        if (!Array.isArray(cmd.rooms) || cmd.rooms.length > 0) this.joined(send, nick, undefined);
        break;
      case 'join':
        this.joined(send, nick, id);
        break;
      case 'message':
        send({ type: 'ack', id, room: 'lobby', seq: ++this.seq, time: 0 });
        break;
      case 'quit':
        send({ type: 'bye', code: 'QUIT', reason: 'bye' });
        socket.end();
        break;
    }
  }

  private joined(send: Send, nick: string, id: unknown): void {
    send({ type: 'joined', id, room: 'lobby', nick, self: true, members: [nick], seq: this.seq, topic: '' });
    send({ type: 'history', id, room: 'lobby', messages: [], first: 1, last: this.seq, missed: 0 });
  }
}
