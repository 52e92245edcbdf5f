/**
 * What a search query means, and which words of a message it marks, for every store. The
 * SQLite store lets its full-text index find the messages and marks them here, so that both
 * stores mark the same words and no marker character has to be reserved in people's text.
 *
 * Words are runs of letters, digits and combining marks, as SQLite's unicode61 tokenizer
 * (with those categories) cuts them; they compare without case and without accents. SQLite
 * removes accents from Latin letters only, so the memory store may find a little more in
 * other scripts; any message SQLite finds is marked here.
 */

/** One word of a query; `prefix` when it was typed with a trailing "*". */
export interface SearchTerm {
  /** As typed: the full-text index folds it itself, the way it folded the stored text. */
  word: string;
  folded: string;
  prefix: boolean;
}

/** More words than anyone types; a bound on the work one query can ask for. */
export const MAX_TERMS = 16;

const WORD = /[\p{L}\p{N}\p{Co}\p{M}]+/gu;
const QUERY_WORD = /([\p{L}\p{N}\p{Co}\p{M}]+)(\*?)/gu;
const MARKS = /\p{M}+/gu;

/** Case and accents removed: the form in which words compare. */
export function foldWord(word: string): string {
  return word.normalize('NFD').replace(MARKS, '').toLowerCase();
}

/** The words of a query, each once; none when it holds no word (nothing then matches). */
export function parseQuery(query: string): SearchTerm[] {
  const terms: SearchTerm[] = [];
  const seen = new Set<string>();
  for (const m of query.matchAll(QUERY_WORD)) {
    const folded = foldWord(m[1]!);
    const prefix = m[2] === '*';
    const key = `${prefix ? '*' : ''}${folded}`;
    if (folded === '' || seen.has(key)) continue;
    seen.add(key);
    terms.push({ word: m[1]!, folded, prefix });
    if (terms.length === MAX_TERMS) break;
  }
  return terms;
}

/**
 * The marks of `text` for `terms`: every word that matches a term, as [start, end) offsets,
 * or null when some term matches no word (the text does not match the query).
 */
export function markMatches(text: string, terms: readonly SearchTerm[]): [number, number][] | null {
  if (terms.length === 0) return null;
  const marks: [number, number][] = [];
  const found = new Array<boolean>(terms.length).fill(false);
  for (const m of text.matchAll(WORD)) {
    const folded = foldWord(m[0]);
    let hit = false;
    for (let i = 0; i < terms.length; i++) {
      const t = terms[i]!;
      if (folded === t.folded || (t.prefix && folded.startsWith(t.folded))) {
        found[i] = true;
        hit = true;
      }
    }
    if (hit) marks.push([m.index, m.index + m[0].length]);
  }
  return found.every(Boolean) ? marks : null;
}

/** The query in FTS5's syntax: every term quoted (so nothing typed is read as an operator), all required. */
export function ftsQuery(terms: readonly SearchTerm[]): string {
  return terms.map((t) => `"${t.word}"${t.prefix ? '*' : ''}`).join(' ');
}
