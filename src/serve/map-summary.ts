// The compact JSON description of a Grad-CAM map that POST /explain answers with.
/** A compact description of a 32x32 map with peak 1: where it peaks, how much it covers, an 8x8 overview. */
export function summarizeMap(map: Float32Array, side = 32, includeMap = false) {
  const round = (x: number, digits = 4) => Number(x.toFixed(digits));
  let peak = 0, sum = 0, above = 0;
  for (let k = 0; k < map.length; k++) {
    if (map[k] > map[peak]) peak = k;
    sum += map[k];
    if (map[k] >= 0.5) above++;
  }
  const cells = 8, step = side / cells;
  const grid: number[][] = [];
  for (let gy = 0; gy < cells; gy++) {
    const row: number[] = [];
    for (let gx = 0; gx < cells; gx++) {
      let s = 0;
      for (let y = gy * step; y < (gy + 1) * step; y++) for (let x = gx * step; x < (gx + 1) * step; x++) s += map[y * side + x];
      row.push(round(s / (step * step), 3));
    }
    grid.push(row);
  }
  return {
    size: side,
    peak: { x: peak % side, y: Math.floor(peak / side), value: round(map[peak] ?? 0) },
    mean: round(sum / map.length),
    /** fraction of pixels at >= half the peak */
    coverage: round(above / map.length),
    /** 8x8 means of 4x4 blocks, row-major from the top left */
    grid,
    ...(includeMap ? { map: Array.from({ length: side }, (_, y) => Array.from(map.subarray(y * side, (y + 1) * side), (v) => round(v, 3))) } : {}),
  };
}
