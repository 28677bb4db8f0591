// A live progress line for the jobs of one call, on a terminal only: rewritten in place as the jobs
// move on, finished with a newline. Nothing at all when stderr is not a terminal (logs, CI, tests).
export interface JobCounts {
  queued: number;
  running: number;
  done: number;
  failed: number;
  total: number;
}

export class ProgressLine {
  private last = '';
  private readonly live: boolean;

  constructor(private readonly label: string, private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.live = stream.isTTY === true;
  }

  update(c: JobCounts): void {
    if (!this.live) return;
    const failed = c.failed ? `, ${c.failed} failed` : '';
    const text = `xpr ${this.label}: ${c.queued} queued, ${c.running} running, ${c.done} done${failed} (of ${c.total} jobs)`;
    if (text === this.last) return;
    this.last = text;
    this.stream.write(`\r\x1b[K${text}`);
  }

  end(): void {
    if (!this.live || this.last === '') return;
    this.stream.write('\n');
    this.last = '';
  }
}
