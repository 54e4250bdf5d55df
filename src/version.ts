import { PACKAGE_ROOT } from './native';
import { readJson } from './train/run-dir';

let cached: string | undefined;

export function packageVersion(): string {
  cached ??= readJson<{ version: string }>(`${PACKAGE_ROOT}/package.json`).version;
  return cached;
}
