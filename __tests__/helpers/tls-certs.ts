/**
 * Certificates for the TLS client's tests, made with the `openssl` command in a directory of
 * the test's own (see openssl.ts for where it is missing): self-signed ones, as `serve --tls`
 * makes, and ones signed by a test authority that a client can be told to trust.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface TestCert {
  cert: Buffer;
  key: Buffer;
  /** SHA256:AB:CD:... as the server's banner prints it. */
  fingerprint: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

function load(certFile: string, keyFile: string): TestCert {
  const cert = readFileSync(certFile);
  return { cert, key: readFileSync(keyFile), fingerprint: `SHA256:${new X509Certificate(cert).fingerprint256}` };
}

/** A self-signed certificate (CN=name, no other names), as a `serve --tls` server presents. */
export function selfSigned(dir: string, name: string): TestCert {
  const [certFile, keyFile] = [path.join(dir, `${name}.pem`), path.join(dir, `${name}.key`)];
  openssl(['req', '-x509', ...EC, '-days', '30', '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', certFile]);
  return load(certFile, keyFile);
}

/** A certificate authority of the test's own; sign() issues certificates for the given names. */
export function authority(dir: string): { ca: Buffer; sign(name: string, altNames: string): TestCert } {
  const [caFile, caKey] = [path.join(dir, 'ca.pem'), path.join(dir, 'ca.key')];
  openssl(['req', '-x509', ...EC, '-days', '30', '-subj', '/CN=roomcast test CA', '-keyout', caKey, '-out', caFile]);
  return {
    ca: readFileSync(caFile),
    sign(name, altNames) {
      const [certFile, keyFile, csr, ext] = ['pem', 'key', 'csr', 'ext'].map((e) => path.join(dir, `${name}.${e}`)) as [string, string, string, string];
      writeFileSync(ext, `subjectAltName=${altNames}\n`);
      openssl(['req', ...EC, '-subj', `/CN=${name}`, '-keyout', keyFile, '-out', csr]);
      openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-days', '30', '-extfile', ext, '-out', certFile]);
      return load(certFile, keyFile);
    },
  };
}
