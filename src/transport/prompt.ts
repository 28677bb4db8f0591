// Questions on the user's terminal for SSH logins: one-time codes, passwords, key passphrases.
// Only when stdin is a terminal; questions are asked one at a time even when several hosts connect
// at once, and hidden answers are read in raw mode so they never echo.
import readline from 'node:readline';

/** Whether there is a terminal to ask on. */
export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY) && typeof process.stdin.setRawMode === 'function';
}

let queue: Promise<unknown> = Promise.resolve();

/** Ask one question on the terminal; `echo: false` hides the answer. Serialized process-wide. */
export function ask(question: string, echo: boolean): Promise<string> {
  const next = queue.then(() => (echo ? askVisible(question) : askHidden(question)));
  queue = next.catch(() => undefined);
  return next;
}

function askVisible(question: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer);
    });
  });
}

function askHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let answer = '';
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    const done = (err?: Error) => {
      stdin.removeListener('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(answer);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new Error('Cancelled at the prompt (Ctrl-C)'));
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1);
        else answer += ch;
      }
    };
    stdin.on('data', onData);
  });
}
