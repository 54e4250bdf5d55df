#include "augment.h"

#include <algorithm>
#include <cmath>

namespace cifake {

torch::Tensor augment(const torch::Tensor& x, const AugmentConfig& a, at::Generator& gen) {
  auto out = x;
  const auto n = x.size(0);
  if (a.hflip) {
    auto flip = (torch::rand({n, 1, 1, 1}, gen, x.options()) < 0.5);
    out = torch::where(flip, out.flip({3}), out);
  }
  if (a.shift > 0) {
    // Integer translations per image, zero fill: nearest-neighbour sampling at exact pixel centres.
    auto opts = x.options();
    auto shifts = torch::randint(-a.shift, a.shift + 1, {n, 2}, gen, opts);
    auto theta = torch::zeros({n, 2, 3}, opts);
    theta.select(1, 0).select(1, 0).fill_(1);
    theta.select(1, 1).select(1, 1).fill_(1);
    theta.select(1, 0).select(1, 2).copy_(shifts.select(1, 0) * (2.0 / out.size(3)));
    theta.select(1, 1).select(1, 2).copy_(shifts.select(1, 1) * (2.0 / out.size(2)));
    namespace F = torch::nn::functional;
    auto grid = F::affine_grid(theta, out.sizes(), /*align_corners=*/false);
    out = F::grid_sample(out, grid,
                         F::GridSampleFuncOptions().mode(torch::kNearest).padding_mode(torch::kZeros).align_corners(false));
  }
  return out;
}

void cutmix(torch::Tensor& x, torch::Tensor& target, double p, at::Generator& gen) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  if (p <= 0 || n < 2) return;
  // One draw for the whole batch: [apply?, lam, box centre y, box centre x].
  auto u = torch::rand({4}, gen, torch::TensorOptions(torch::kDouble).device(x.device())).cpu();
  auto d = u.accessor<double, 1>();
  if (d[0] >= p) return;
  const double side = std::sqrt(1.0 - d[1]);
  const int64_t bh = static_cast<int64_t>(h * side), bw = static_cast<int64_t>(w * side);
  const int64_t cy = static_cast<int64_t>(d[2] * h), cx = static_cast<int64_t>(d[3] * w);
  const int64_t y0 = std::clamp<int64_t>(cy - bh / 2, 0, h), y1 = std::clamp<int64_t>(cy + (bh + 1) / 2, 0, h);
  const int64_t x0 = std::clamp<int64_t>(cx - bw / 2, 0, w), x1 = std::clamp<int64_t>(cx + (bw + 1) / 2, 0, w);
  if (y1 <= y0 || x1 <= x0) return;
  auto perm = torch::randperm(n, gen, torch::TensorOptions(torch::kLong).device(x.device()));
  // index_select copies, so the pasted boxes are read before any is written.
  auto boxes = x.index_select(0, perm).slice(2, y0, y1).slice(3, x0, x1);
  x.slice(2, y0, y1).slice(3, x0, x1).copy_(boxes);
  const double pasted = static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(h * w);
  target = target * (1.0 - pasted) + target.index_select(0, perm) * pasted;
}

}  // namespace cifake
