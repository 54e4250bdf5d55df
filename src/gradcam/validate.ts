/**
 * Input validation shared by the Grad-CAM renderers. Every public function
 * validates its arguments up front and throws a TypeError (wrong type) or a
 * RangeError (wrong size / value) whose message starts with the function
 * name, so that a bad call from the CLI says exactly what was wrong.
 */

/** FAKE = 0, REAL = 1, as everywhere in cifake-torch. */
export type Label = 0 | 1;

export const LABEL_NAMES: readonly ['FAKE', 'REAL'] = ['FAKE', 'REAL'];

export function labelName(label: Label): 'FAKE' | 'REAL' {
  return LABEL_NAMES[label];
}

export function assertObject(fn: string, what: string, value: unknown): asserts value is object {
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`${fn}: ${what} must be an object, got ${describe(value)}`);
  }
}

export function assertPositiveInt(fn: string, what: string, value: unknown, max = Number.MAX_SAFE_INTEGER): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${fn}: ${what} must be an integer in [1, ${max}], got ${describe(value)}`);
  }
}

export function assertNonNegativeInt(fn: string, what: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new RangeError(`${fn}: ${what} must be a non-negative integer, got ${describe(value)}`);
  }
}

export function assertUnitInterval(fn: string, what: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new RangeError(`${fn}: ${what} must be a number in [0, 1], got ${describe(value)}`);
  }
}

export function assertPositiveFinite(fn: string, what: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${fn}: ${what} must be a finite number > 0, got ${describe(value)}`);
  }
}

export function assertNonNegativeFinite(fn: string, what: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${fn}: ${what} must be a finite number >= 0, got ${describe(value)}`);
  }
}

export function assertLabel(fn: string, what: string, value: unknown): asserts value is Label {
  if (value !== 0 && value !== 1) {
    throw new RangeError(`${fn}: ${what} must be 0 (FAKE) or 1 (REAL), got ${describe(value)}`);
  }
}

/** A CHW uint8 image: 3 planes of height*width bytes (all R, then G, then B). */
export function assertImage(fn: string, image: unknown, width: number, height: number): asserts image is Uint8Array {
  if (!(image instanceof Uint8Array)) {
    throw new TypeError(`${fn}: image must be a Uint8Array (3*H*W uint8, CHW planar), got ${describe(image)}`);
  }
  const expected = 3 * width * height;
  if (image.length !== expected) {
    throw new RangeError(
      `${fn}: image has ${image.length} bytes but 3*imageHeight*imageWidth = 3*${height}*${width} = ${expected} (CHW planar RGB expected)`,
    );
  }
}

/**
 * A row-major H*W Grad-CAM map: Float32Array (or Float64Array) of finite,
 * non-negative values.
 */
export function assertMap(fn: string, what: string, map: unknown, width: number, height: number): asserts map is Float32Array | Float64Array {
  if (!(map instanceof Float32Array) && !(map instanceof Float64Array)) {
    throw new TypeError(`${fn}: ${what} must be a Float32Array of height*width values, got ${describe(map)}`);
  }
  const expected = width * height;
  if (map.length !== expected) {
    throw new RangeError(`${fn}: ${what} has ${map.length} values but height*width = ${height}*${width} = ${expected}`);
  }
  for (let i = 0; i < map.length; i++) {
    const v = map[i]!;
    if (!Number.isFinite(v)) {
      throw new RangeError(`${fn}: ${what} contains a non-finite value (${v}) at index ${i} (row ${Math.floor(i / width)}, col ${i % width})`);
    }
    if (v < 0) {
      throw new RangeError(
        `${fn}: ${what} contains a negative value (${v}) at index ${i} (row ${Math.floor(i / width)}, col ${i % width}); Grad-CAM maps are non-negative (ReLU)`,
      );
    }
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value);
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as ArrayLike<unknown>).length ?? value.byteLength})`;
  if (Array.isArray(value)) return `Array(${value.length})`;
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}
