/**
 * The first-contact question at a terminal, for `join` and `post`: the certificate's
 * fingerprint, then "Trust it and remember it? [y/N]". Anything but y or yes is a no, Ctrl-C
 * and the end of input too: trusting must be a deliberate act.
 */
import readline from 'node:readline';
import type { AskTrust } from './trust.js';

export const TRUST_QUESTION = 'Trust it and remember it? [y/N] ';

export function isYes(answer: string): boolean {
  return /^(?:y|yes)$/i.test(answer.trim());
}

/** Asks on `output` (stderr: stdout may be a pipe to a file) and reads the answer from `input`. */
export function askOnTerminal(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): AskTrust {
  return (question) =>
    new Promise((resolve) => {
      output.write(`${question.text}\n`);
      const rl = readline.createInterface({ input, output, terminal: true });
      let yes = false;
      rl.on('SIGINT', () => {
        output.write('\n');
        rl.close();
      });
      rl.once('close', () => resolve(yes));
      rl.question(TRUST_QUESTION, (answer) => {
        yes = isYes(answer);
        rl.close();
      });
    });
}
