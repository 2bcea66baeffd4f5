/**
 * The CLI's own failures, apart from errors.ts (which reads Connect's errors) so that help and
 * completion load no client code.
 */

/** A failure with a message meant for the user. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** A usage error: the message plus the usage text, exit 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}
