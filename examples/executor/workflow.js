// A toy three-stage workflow for the xpr executor, with real CPU work per element:
//   split  — a text into its words (one task per submission);
//   score  — each word on its own (`each: true`: one task per word, identical words are one task),
//            by a loop of SHA-256 hashes that takes a tenth of a second or so per word;
//   rank   — the scores gathered in the words' order, aggregated into a ranking.
// Each stage is an exported function, so the executor's workers import this module (as a bundle,
// fetched by its hash) and call the stage they serve.
import { createHash } from 'node:crypto';
import { workflow } from 'xpr';

/** SHA-256 rounds per word: the stand-in for an expensive computation. */
export const ROUNDS = 50_000;

/** `{ text }` → its words, lower case, in order, repeats kept. */
export function split(input) {
  if (typeof input?.text !== 'string') throw new TypeError('the input must be { "text": "..." }');
  return input.text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
}

/**
 * A word's "luck": in a chain of ROUNDS hashes starting from the word, how many begin with a zero
 * byte (about 1 in 256). Deterministic, so a cached score is the score.
 */
export function score(word) {
  let digest = Buffer.from(word, 'utf8');
  let luck = 0;
  for (let i = 0; i < ROUNDS; i++) {
    digest = createHash('sha256').update(digest).digest();
    if (digest[0] === 0) luck++;
  }
  return { word, luck };
}

/**
 * The scores of every word (in the text's order) → the ranking. It reads the submission's own input
 * (`ctx.input.top`), so its result is cached for this input only; split's and score's results do not
 * depend on it and are shared by every submission that meets the same text or word.
 */
export function rank(scores, ctx) {
  const top = ctx.input?.top ?? 10;
  const byWord = new Map();
  for (const { word, luck } of scores) {
    const seen = byWord.get(word);
    if (seen) seen.count++;
    else byWord.set(word, { word, count: 1, luck });
  }
  const ranking = [...byWord.values()]
    .sort((a, b) => b.luck - a.luck || b.count - a.count || a.word.localeCompare(b.word))
    .slice(0, top);
  return { words: scores.length, distinct: byWord.size, ranking };
}

export const wordrank = workflow('wordrank', [
  { stage: 'split', run: split },
  { stage: 'score', run: score, each: true },
  { stage: 'rank', run: rank },
]);
