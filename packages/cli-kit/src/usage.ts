/**
 * The command line's own error, kept free of imports so that parsing and --help never load the
 * protocol and transport packages. Its code matches the EUSAGE row of the error table (exit 2).
 */
export class UsageError extends Error {
  readonly code = 'EUSAGE';

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function usageError(message: string): UsageError {
  return new UsageError(message);
}
