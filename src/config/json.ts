// JSON text with error positions. Node 20's JSON.parse names no position for many mistakes
// (`Unexpected token '}', "…" is not valid JSON`), and a user with a 200-line config.json needs the
// line and column. So the value comes from JSON.parse, and only when that fails this small scanner
// walks the text to find where and why.

export interface JsonSyntaxError {
  line: number;
  column: number;
  message: string;
}

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; error: JsonSyntaxError };

/** Parse JSON text; on failure say where (1-based line and column) and what was expected. */
export function parseJson(text: string): JsonParseResult {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    const found = new Scanner(text).firstError();
    const { offset, message } = found ?? { offset: 0, message: e instanceof Error ? e.message : String(e) };
    return { ok: false, error: { ...lineColumn(text, offset), message } };
  }
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return { line, column };
}

class SyntaxFault {
  constructor(readonly offset: number, readonly message: string) {}
}

/** Recursive-descent validator of RFC 8259 JSON; throws SyntaxFault at the first mistake. */
class Scanner {
  private pos = 0;

  constructor(private readonly text: string) {}

  firstError(): { offset: number; message: string } | undefined {
    try {
      this.ws();
      this.value();
      this.ws();
      if (this.pos < this.text.length) this.fail('unexpected text after the end of the JSON value');
      return undefined;
    } catch (e) {
      if (e instanceof SyntaxFault) return { offset: e.offset, message: e.message };
      throw e;
    }
  }

  private fail(message: string): never {
    throw new SyntaxFault(this.pos, message);
  }

  private describeHere(): string {
    const c = this.text[this.pos];
    return c === undefined ? 'end of file' : `'${c}'`;
  }

  private ws(): void {
    while (/[ \t\n\r]/.test(this.text[this.pos] ?? '')) this.pos++;
  }

  private value(): void {
    const c = this.text[this.pos];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
    for (const word of ['true', 'false', 'null']) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return;
      }
    }
    this.fail(`expected a value (object, array, string, number, true, false or null), found ${this.describeHere()}`);
  }

  private object(): void {
    this.pos++; // '{'
    this.ws();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] !== '"') {
        this.fail(`expected a double-quoted key, found ${this.describeHere()}` +
          (this.text[this.pos] === '}' ? ' (trailing commas are not allowed in JSON)' : ''));
      }
      this.string();
      this.ws();
      if (this.text[this.pos] !== ':') this.fail(`expected ':' after the key, found ${this.describeHere()}`);
      this.pos++;
      this.ws();
      this.value();
      this.ws();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === '}') {
        this.pos++;
        return;
      }
      this.fail(`expected ',' or '}' after a value in an object, found ${this.describeHere()}`);
    }
  }

  private array(): void {
    this.pos++; // '['
    this.ws();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.text[this.pos] === ']') this.fail(`expected a value, found ']' (trailing commas are not allowed in JSON)`);
      this.value();
      this.ws();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        return;
      }
      this.fail(`expected ',' or ']' after a value in an array, found ${this.describeHere()}`);
    }
  }

  private string(): void {
    this.pos++; // opening quote
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') {
        this.pos++;
        return;
      }
      if (c < ' ') this.fail('control character (e.g. a newline) inside a string; write it as an escape like \\n');
      if (c === '\\') {
        const e = this.text[this.pos + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(this.text.slice(this.pos + 2, this.pos + 6))) {
            this.pos++;
            this.fail('expected four hex digits after \\u');
          }
          this.pos += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) {
          this.pos++;
          this.fail(`invalid escape '\\${e ?? ''}' in a string`);
        }
        this.pos += 2;
        continue;
      }
      this.pos++;
    }
  }

  private number(): void {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(this.text.slice(this.pos));
    if (!m || m[0] === '-') this.fail('invalid number');
    this.pos += m[0].length;
  }
}
