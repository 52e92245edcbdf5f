/**
 * Whether to talk to a TLS server, decided as ssh decides about a host key. A certificate that
 * verifies against the system's authorities for the name connected to is trusted as usual.
 * Any other (a `serve --tls` self-signed one) is trusted on first use: its fingerprint is
 * checked against --fingerprint or put to a person, then remembered in the known-servers
 * file; one that differs from what was remembered is refused, loudly, every time.
 *
 * No terminal here: the question is a callback the command supplies, so scripts, tests and
 * the terminal client share one policy.
 */
import { KnownServers, serverKey } from './known-servers.js';
import type { PeerCertificate } from './tls-connect.js';

/** Why a TLS server was not talked to; stable, for programs and tests. */
export type TrustErrorCode =
  /** Not trusted: nobody could be asked, or the person said no. */
  | 'TLS_UNTRUSTED'
  /** The certificate is not the one --fingerprint named. */
  | 'TLS_FINGERPRINT_MISMATCH'
  /** The certificate is not the one remembered for this server: perhaps a man in the middle. */
  | 'TLS_FINGERPRINT_CHANGED'
  /** The known-servers file exists but cannot be read, so a change could not be noticed. */
  | 'TLS_KNOWN_SERVERS';

export class TrustError extends Error {
  constructor(
    readonly code: TrustErrorCode,
    message: string,
    /** A few words, for a line that reports a failed reconnect. */
    readonly brief: string,
  ) {
    super(message);
  }
}

/** What a person is asked on first contact (the command adds "Trust it and remember it? [y/N]"). */
export interface TrustQuestion {
  /** HOST:PORT. */
  server: string;
  fingerprint: string;
  /** The lines to show before the question. */
  text: string;
}

/** Asks a person; resolves true only on a yes. */
export type AskTrust = (question: TrustQuestion) => Promise<boolean>;

export interface TrustOptions {
  /** --fingerprint, in the canonical form: the certificate expected. */
  fingerprint?: string;
  /** Asks a person; absent where nobody can answer (stdin is not a terminal). */
  ask?: AskTrust;
  /** The known-servers file; default: knownServersFile() ($XDG_CONFIG_HOME/roomcast/known_servers). */
  knownServersFile?: string;
}

/** How the server came to be trusted (the terminal says which). */
export interface Trusted {
  how: 'verified' | 'known' | 'fingerprint' | 'asked';
  fingerprint: string;
}

export interface TrustCheck {
  host: string;
  port: number;
  /** Null: the server presented no certificate. */
  peer: PeerCertificate | null;
  /** A reconnect: nobody is asked, and a certificate not trusted before is refused. */
  reconnecting: boolean;
  /**
   * Closes the connection before a person is asked: a server greets a connection that stays
   * silent as a netcat user's, so after a yes the caller connects again.
   */
  hangUp(): void;
  /** Something worth saying that does not stop the connection (the file could not be written). */
  warn(text: string): void;
}

export class ServerTrust {
  readonly known: KnownServers;

  constructor(private readonly opts: TrustOptions = {}) {
    this.known = new KnownServers(opts.knownServersFile);
  }

  /** Resolves how the server is trusted, or rejects with a TrustError saying why it is not. */
  async check(c: TrustCheck): Promise<Trusted> {
    const { peer } = c;
    const server = serverKey(c.host, c.port);
    if (peer === null)
      throw new TrustError('TLS_UNTRUSTED', `the server at ${server} presented no certificate, so roomcast did not connect`, 'no certificate');
    const fingerprint = peer.fingerprint;
    if (peer.verified) return { how: 'verified', fingerprint };
    const file = this.known.file;
    let known: string | undefined;
    try {
      known = await this.known.get(server);
    } catch (err) {
      throw new TrustError(
        'TLS_KNOWN_SERVERS',
        `cannot read ${file}, where the certificates of known servers are kept (${(err as Error).message}): fix its permissions, or point XDG_CONFIG_HOME elsewhere`,
        `cannot read ${file}`,
      );
    }
    const expected = this.opts.fingerprint;
    if (expected === fingerprint) {
      if (known !== fingerprint) await this.remember(c, server, fingerprint);
      return { how: 'fingerprint', fingerprint };
    }
    if (known !== undefined && known !== fingerprint) throw changed(server, known, fingerprint, file);
    if (expected !== undefined) throw mismatch(server, expected, fingerprint);
    if (known === fingerprint) return { how: 'known', fingerprint };
    if (c.reconnecting || this.opts.ask === undefined) throw untrusted(server, peer, c.reconnecting);
    c.hangUp();
    const text =
      `The server at ${server} presented ${peer.problem}, not seen here before. Its fingerprint is\n` +
      `  ${fingerprint}\n` +
      'Compare it with the one the server printed when it started (roomcast serve --tls shows it; ask its operator).';
    // A question that could not be put (the terminal went away) is a no.
    if (!(await this.opts.ask({ server, fingerprint, text }).catch(() => false)))
      throw new TrustError('TLS_UNTRUSTED', `the certificate of ${server} was not trusted, so roomcast did not connect`, 'certificate not trusted');
    await this.remember(c, server, fingerprint);
    return { how: 'asked', fingerprint };
  }

  private async remember(c: TrustCheck, server: string, fingerprint: string): Promise<void> {
    try {
      await this.known.remember(server, fingerprint);
    } catch (err) {
      c.warn(`could not remember the certificate of ${server} in ${this.known.file} (${(err as Error).message}): it is trusted for this session only`);
    }
  }
}

function changed(server: string, before: string, now: string, file: string): TrustError {
  return new TrustError(
    'TLS_FINGERPRINT_CHANGED',
    [
      `WARNING: the server at ${server} presented a different certificate than before.`,
      `  before: ${before}`,
      `  now:    ${now}`,
      'Someone may be intercepting the connection (a man in the middle), so roomcast did not connect.',
      "If the server's certificate was changed on purpose (check the new fingerprint with its operator),",
      `remove the line for ${server} from ${file}, or connect with --fingerprint ${now}`,
    ].join('\n'),
    'the server presented a different certificate than before',
  );
}

function mismatch(server: string, expected: string, got: string): TrustError {
  return new TrustError(
    'TLS_FINGERPRINT_MISMATCH',
    [
      `the server at ${server} presented a certificate other than the one --fingerprint names, so roomcast did not connect.`,
      `  --fingerprint: ${expected}`,
      `  presented:     ${got}`,
      'Check the fingerprint with the server (roomcast serve --tls prints it at start-up): if it was copied right, someone may be intercepting the connection.',
    ].join('\n'),
    'the certificate is not the one --fingerprint names',
  );
}

function untrusted(server: string, peer: PeerCertificate, reconnecting: boolean): TrustError {
  const when = reconnecting ? 'on reconnecting, ' : '';
  return new TrustError(
    'TLS_UNTRUSTED',
    [
      `${when}the server at ${server} presented ${peer.problem}, not seen here before, so roomcast did not connect. Its fingerprint is`,
      `  ${peer.fingerprint}`,
      'If it is the one the server printed when it started (roomcast serve --tls shows it), connect with',
      `  --fingerprint ${peer.fingerprint}`,
      'to trust it and remember it.',
    ].join('\n'),
    'certificate not trusted',
  );
}
