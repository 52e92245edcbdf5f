export interface JoinOptions {
  address: string;
  nick?: string;
  rooms: string[];
  reconnect: boolean;
}

export async function runJoin(_opts: JoinOptions): Promise<number> {
  throw new Error('not yet');
}
