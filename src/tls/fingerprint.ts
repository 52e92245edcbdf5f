/**
 * A certificate's SHA-256 fingerprint as people copy it: from the server's banner
 * (SHA256:3A:F1:...), from `openssl x509 -fingerprint -sha256` (sha256 Fingerprint=3a:f1:...),
 * or as bare hex. Every form is brought to the banner's, so that one compares equal to another.
 * Here rather than in client/: the command line checks --fingerprint while it parses, before
 * any client module is loaded.
 */
export const FINGERPRINT_PREFIX = 'SHA256:';

/**
 * The canonical form ("SHA256:" and 32 uppercase hex pairs joined by colons, as the banner and
 * X509Certificate.fingerprint256 have it) of a fingerprint written any of those ways: any case,
 * with or without the prefix, with or without colons. Null when it is not 32 bytes of hex.
 */
export function normalizeFingerprint(text: string): string | null {
  let s = text.trim();
  // openssl prints "sha256 Fingerprint=AB:CD:..." and that is what gets pasted.
  s = s.replace(/^sha256 fingerprint=/i, '').replace(/^sha-?256:/i, '');
  const hex = s.replace(/:/g, '');
  if (!/^[0-9a-f]{64}$/i.test(hex)) return null;
  return FINGERPRINT_PREFIX + hex.toUpperCase().match(/../g)!.join(':');
}

/** The first bytes, enough to tell certificates apart at a glance: "SHA256:3A:F1:22:9B…". */
export function shortFingerprint(fingerprint: string): string {
  return `${fingerprint.slice(0, FINGERPRINT_PREFIX.length + 11)}…`;
}
