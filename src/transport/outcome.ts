// The one transport error the job engine acts on: a command that must not run twice (a submission)
// was cut off by a dropped connection, so nobody knows whether it ran. The engine then finds the job
// again by its unique scheduler job name instead of submitting it a second time.
import { UnreachableError } from '../errors.js';

export class OutcomeUnknownError extends UnreachableError {
  readonly command: string;

  constructor(host: string, command: string, cause?: unknown) {
    super(host, `The connection to ${host} dropped while this command ran, so whether it ran is unknown: ${command}`, {
      hint: 'xpr does not repeat it (a second submission could queue a job twice); jobs are found again by their scheduler job name.',
      cause,
    });
    this.command = command;
  }
}
