/** Error of the data pipeline; `file` names the offending file or folder when there is one. */
export class DataError extends Error {
  readonly file?: string;
  constructor(message: string, file?: string) {
    super(message);
    this.name = 'DataError';
    if (file !== undefined) this.file = file;
  }
}

/** Layout reminder appended to layout errors. */
export const EXPECTED_LAYOUT = [
  'Expected layout (zip or folder, optionally inside one wrapper folder such as archive/):',
  '  <split>/<class>/<image files>, e.g. train/FAKE/*.jpg, train/REAL/*.jpg, test/FAKE/*.jpg, test/REAL/*.jpg',
  'Class folders map to labels through the class map (default FAKE -> 0, REAL -> 1, case-insensitive).',
].join('\n');

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
