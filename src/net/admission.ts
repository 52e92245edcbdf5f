/**
 * Connection limits, in total and per remote address, shared by every listener and transport.
 */
import { protocolError, type ProtocolError } from '../protocol/errors.js';

export class Admission {
  total = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerAddress: number,
  ) {}

  /** Counts the connection in, or says why it may not come in (and counts nothing). */
  admit(address: string): ProtocolError | null {
    if (this.total >= this.maxTotal) return protocolError('TOO_MANY_CONNECTIONS', `${this.maxTotal} connections`);
    const n = this.perAddress.get(address) ?? 0;
    if (n >= this.maxPerAddress)
      return protocolError('TOO_MANY_FROM_ADDRESS', `${this.maxPerAddress} from ${address}`);
    this.total++;
    this.perAddress.set(address, n + 1);
    return null;
  }

  release(address: string): void {
    this.total--;
    const n = (this.perAddress.get(address) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, n);
  }
}
