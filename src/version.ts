import { PACKAGE_ROOT } from './native';
import { readJson } from './util/json-file';

let cached: string | undefined;

export function packageVersion(): string {
  cached ??= readJson<{ version: string }>(`${PACKAGE_ROOT}/package.json`).version;
  return cached;
}
