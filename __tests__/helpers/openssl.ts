/**
 * The `openssl` command, which `serve --tls` makes its certificate with and the TLS tests use as
 * a netcat user does (s_client). Where it is missing the block is reported as skipped, saying
 * why; CI installs it (.ci/run), so there it always runs.
 */
import { execFileSync } from 'node:child_process';

export function opensslMissing(): string | null {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'the openssl command is not installed (Debian: apt-get install -y openssl)';
  }
}

/** `describe`, or a skipped one that says why when openssl is not here. */
export function describeWithOpenssl(title: string, body: () => void): void {
  const why = opensslMissing();
  if (why === null) return describe(title, body);
  console.warn(`${title}: skipped: ${why}`);
  describe.skip(title, body);
}
