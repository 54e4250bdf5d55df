// What `cifake info` prints and a program may check before training: the libtorch build, threads,
// BLAS and CUDA devices, read from the addon (which loads on first call).
import { availableCpus, loadedBlasLibraries, loadNative, PACKAGE_ROOT, type NativeInfo } from '../native';

export { availableCpus, PACKAGE_ROOT };

export interface RuntimeInfo extends NativeInfo {
  /** CPUs this process may use. */
  availableCpus: number;
  /** BLAS shared libraries mapped into the process. */
  blasLibraries: string[];
}

export function runtimeInfo(): RuntimeInfo {
  return { ...loadNative().info(), availableCpus: availableCpus(), blasLibraries: loadedBlasLibraries() };
}
