import { sanitize, decodeUtf8, isValidNick, mixedScripts, normalizeRoom, nickKey, scriptsOf } from '../../src/protocol/text.js';

describe('sanitize', () => {
  test('keeps ordinary text, TAB and non-ASCII exactly as sent', () => {
    const s = 'héllo\twörld 日本語 😀 ‏LRM is fine';
    expect(sanitize(s)).toBe(s);
  });

  test('C0 controls become control pictures, DEL becomes ␡', () => {
    expect(sanitize('\x00\x01\x07\x08\x0a\x0b\x0c\x0d\x1b\x1f\x7f')).toBe('␀␁␇␈␊␋␌␍␛␟␡');
  });

  test('terminal escape sequences lose their ESC/BEL', () => {
    expect(sanitize('\x1b[2J\x1b]0;title\x07')).toBe('␛[2J␛]0;title␇');
  });

  test('C1 controls and bidi overrides/isolates become U+FFFD', () => {
    expect(sanitize('a\u0080b\u009bc\u202ad\u202ee\u2066f\u2069g')).toBe('a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg');
  });

  test('is stable across calls (global regex state does not leak)', () => {
    expect(sanitize('a\x1b')).toBe('a␛');
    expect(sanitize('a\x1b')).toBe('a␛');
    expect(sanitize('plain')).toBe('plain');
  });
});

describe('decodeUtf8', () => {
  test('invalid sequences become U+FFFD', () => {
    expect(decodeUtf8(Buffer.from([0x61, 0xff, 0xfe, 0x62]))).toBe('a\ufffd\ufffdb');
    expect(decodeUtf8(Buffer.from([0xc0, 0xaf]))).toBe('\ufffd\ufffd'); // overlong "/"
    expect(decodeUtf8(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\ufffd\ufffd\ufffd'); // a surrogate
    expect(decodeUtf8(Buffer.from([0xe2, 0x82]))).toBe('\ufffd'); // truncated
  });

  test('C1 as valid UTF-8 decodes to the C1 character (sanitize removes it later)', () => {
    expect(decodeUtf8(Buffer.from([0xc2, 0x9b]))).toBe('\u009b');
  });
});

describe('nicks and rooms', () => {
  test('valid and invalid nicks', () => {
    for (const ok of ['a', '_x', 'Zoë', 'bob-2', 'a'.repeat(24), 'Ñandú']) expect([ok, isValidNick(ok)]).toEqual([ok, true]);
    for (const bad of ['', '1abc', '-a', 'a b', 'a'.repeat(25), 'a\u241b', 'a\u202eb', 'a.b', 'a\ufffd', 'e\u0301'])
      expect([bad, isValidNick(bad)]).toEqual([bad, false]);
  });

  test('rooms: "#" dropped, lower-cased, NFC', () => {
    expect(normalizeRoom('#Dev')).toBe('dev');
    expect(normalizeRoom('v1.2-rc_3')).toBe('v1.2-rc_3');
    expect(normalizeRoom('Cafe\u0301')).toBe('caf\u00e9');
    expect(normalizeRoom('9lives')).toBe('9lives');
    for (const bad of ['', '#', '.hidden', 'a b', 'a'.repeat(33), 'a/b', 'a\u241b', '##dev'])
      expect([bad, normalizeRoom(bad)]).toEqual([bad, null]);
  });

  test('nick keys ignore case and Unicode form', () => {
    expect(nickKey('Alice')).toBe(nickKey('aLICE'));
    expect(nickKey('Zo\u00eb')).toBe(nickKey('ZOE\u0308'));
  });
});

describe('the confusables policy for nicks (docs/security.md)', () => {
  test('letters of one script, or of scripts written together, are fine; a mix that can pass for another nick is not', () => {
    // "аlice" with a Cyrillic а (U+0430), and "Ωmega" with a Greek Ω: each looks like a Latin name.
    expect(mixedScripts('\u0430lice')).toEqual(['Cyrillic', 'Latin']);
    expect(mixedScripts('\u03a9mega')).toEqual(['Greek', 'Latin']);
    expect(mixedScripts('pаypal')).toEqual(['Latin', 'Cyrillic']);
    for (const fine of ['alice', 'алиса', 'Ωμέγα', '山田たろう', 'タロウ2', '김민수', 'li_wei-2', 'élodie', 'Zoë']) expect([fine, mixedScripts(fine)]).toEqual([fine, null]);
    // Japanese, and Latin with it, as people write names there.
    expect(mixedScripts('Taro山田')).toBeNull();
    expect(scriptsOf('r2-d2_')).toEqual(['Latin']);
  });

  test('the nick key folds case and compatibility forms: full-width, ligatures and superscripts are the same nick', () => {
    expect(nickKey('ａｌｉｃｅ')).toBe('alice');
    expect(nickKey('\ufb01ona')).toBe('fiona');
    expect(nickKey('Bob\u00b2')).toBe('bob2');
    expect(nickKey('ALICE')).toBe('alice');
    // A whole-script look-alike stays another nick (accounts are the defence there).
    expect(nickKey('\u0430\u0440\u0435')).not.toBe(nickKey('ape'));
  });
});
