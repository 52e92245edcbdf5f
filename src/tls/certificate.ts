/**
 * The server's TLS certificate: a real one from files (--tls-cert, --tls-key), or a
 * self-signed one made once with the `openssl` command and kept in the data directory, so that
 * its fingerprint stays the same across restarts: clients remember it, as ssh remembers a
 * host key, and a new one would look like an attack.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';

export interface ServerCertificate {
  cert: Buffer;
  key: Buffer;
  /** "SHA256:" and the certificate's SHA-256 as colon-separated hex pairs (what openssl shows). */
  fingerprint: string;
  /** Made here (--tls), not given. */
  selfSigned: boolean;
  certFile: string;
  validTo: Date;
}

/** A certificate that cannot be had: one line, naming the file and what to do. */
export class CertificateError extends Error {}

/** Where --tls keeps the certificate it made, inside the data directory. */
export const SELF_SIGNED_DIR = 'tls';

export function fingerprintOf(cert: X509Certificate): string {
  return `SHA256:${cert.fingerprint256}`;
}

/** A certificate and key given as files: both read, parsed, and checked to belong together. */
export async function loadCertificate(certFile: string, keyFile: string, selfSigned = false): Promise<ServerCertificate> {
  const read = async (file: string, what: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
      throw new CertificateError(`cannot read the TLS ${what} ${file}: ${why}`);
    }
  };
  const [cert, key] = await Promise.all([read(certFile, 'certificate'), read(keyFile, 'key')]);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new CertificateError(`${certFile} is not a PEM certificate: give the certificate file (-----BEGIN CERTIFICATE-----) to --tls-cert`);
  }
  let keyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch {
    throw new CertificateError(`${keyFile} is not a PEM private key (or it is encrypted): give an unencrypted key to --tls-key`);
  }
  if (!x509.checkPrivateKey(keyObject)) throw new CertificateError(`the key ${keyFile} does not belong to the certificate ${certFile}: give the key the certificate was made for`);
  return { cert, key, fingerprint: fingerprintOf(x509), selfSigned, certFile, validTo: new Date(x509.validTo) };
}

/**
 * The self-signed certificate kept in `dataDir`, made on first use (EC P-256, ten years: its
 * point is a fingerprint that does not change, not an expiry date someone must watch).
 */
export async function selfSignedCertificate(dataDir: string): Promise<ServerCertificate> {
  const dir = path.join(dataDir, SELF_SIGNED_DIR);
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const exists = async (f: string): Promise<boolean> => stat(f).then(() => true, () => false);
  if (!((await exists(certFile)) && (await exists(keyFile)))) {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new CertificateError(`cannot make ${dir} for the TLS certificate: ${(err as Error).message}; give --data-dir a writable directory, or --tls-cert and --tls-key`);
    }
    const host = hostname().replace(/[^A-Za-z0-9.-]/g, '') || 'roomcast';
    const names = [...new Set(['localhost', host])].map((n) => `DNS:${n}`).concat('IP:127.0.0.1', 'IP:::1');
    const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650'];
    args.push('-subj', `/CN=roomcast on ${host}`, '-addext', `subjectAltName=${names.join(',')}`, '-keyout', keyFile, '-out', certFile);
    await new Promise<void>((resolve, reject) =>
      execFile('openssl', args, { timeout: 30_000 }, (err, _out, stderr) => {
        if (!err) return resolve();
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(
          new CertificateError(
            missing
              ? 'the openssl command was not found, and --tls makes its certificate with it: install it (apt-get install openssl), or give --tls-cert FILE --tls-key FILE'
              : `openssl could not make a certificate in ${dir}: ${String(stderr).trim().split('\n').pop() ?? err.message}`,
          ),
        );
      }),
    );
    await chmod(keyFile, 0o600);
  }
  return loadCertificate(certFile, keyFile, true);
}
