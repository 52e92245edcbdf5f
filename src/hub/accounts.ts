/**
 * Accounts: registering a nick and proving it later. Passwords are hashed with scrypt
 * (auth/passwords.ts) and kept in the message store. Wrong passwords are throttled per remote
 * address and per account; an unknown nick is checked against a hash of nothing, so neither
 * the answer nor the time it takes tells a wrong nick from a wrong password.
 */
import { hashPassword, NO_ACCOUNT_HASH, verifyPassword } from '../auth/passwords.js';
import { FailureThrottle } from '../auth/throttle.js';
import { RoomcastError } from '../protocol/errors.js';
import { nickKey } from '../protocol/text.js';
import type { Account, MessageStore } from '../store/store.js';

export const MIN_PASSWORD = 8;

export class AccountDesk {
  private readonly byAddress: FailureThrottle;
  private readonly byAccount: FailureThrottle;

  constructor(
    private readonly store: MessageStore,
    private readonly now: () => number,
  ) {
    this.byAddress = new FailureThrottle({ now });
    this.byAccount = new FailureThrottle({ now });
  }

  /** Whether the nick key is registered, when the store can tell at once (undefined: ask registered()). */
  registeredNow(key: string): boolean | undefined {
    const account = this.store.accountNow?.(key);
    return account === undefined ? undefined : account !== null;
  }

  async registered(key: string): Promise<boolean> {
    return (await this.store.account(key)) !== null;
  }

  /** Registers `nick` with `password`; throws PASSWORD_WEAK or NICK_REGISTERED. */
  async register(nick: string, password: string): Promise<Account> {
    if ([...password].length < MIN_PASSWORD) throw new RoomcastError('PASSWORD_WEAK', MIN_PASSWORD);
    const account: Account = { key: nickKey(nick), nick, hash: await hashPassword(password), created: this.now() };
    if (!(await this.store.createAccount(account))) throw new RoomcastError('NICK_REGISTERED', nick);
    return account;
  }

  /** Gives an account a new password; throws PASSWORD_WEAK. */
  async changePassword(key: string, password: string): Promise<void> {
    if ([...password].length < MIN_PASSWORD) throw new RoomcastError('PASSWORD_WEAK', MIN_PASSWORD);
    const account = await this.store.account(key);
    if (account === null) throw new RoomcastError('NOT_LOGGED_IN');
    await this.store.updateAccount({ ...account, hash: await hashPassword(password) });
  }

  /** The account `nick` names, if `password` is its own; throws LOCKED_OUT or LOGIN_FAILED. */
  async verify(address: string, nick: string, password: string): Promise<Account> {
    const key = nickKey(nick);
    const wait = Math.max(this.byAddress.wait(address), this.byAccount.wait(key));
    if (wait > 0) throw new RoomcastError('LOCKED_OUT', Math.ceil(wait / 1000));
    // Counted as wrong before the check, which takes a while: guesses sent all at once must
    // not all pass the lockout test before the first of them has failed.
    const lock = Math.max(this.byAddress.failed(address), this.byAccount.failed(key));
    const account = await this.store.account(key);
    const ok = await verifyPassword(password, account?.hash ?? NO_ACCOUNT_HASH);
    if (ok && account) {
      this.byAddress.succeeded(address);
      this.byAccount.succeeded(key);
      return account;
    }
    if (lock > 0) throw new RoomcastError('LOCKED_OUT', Math.ceil(lock / 1000));
    throw new RoomcastError('LOGIN_FAILED');
  }
}
