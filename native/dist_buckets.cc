#include "dist_buckets.h"

namespace cifake {

void GradBuckets::build(torch::nn::Module& model) {
  constexpr int64_t kBucketBytes = 25 << 20;
  auto params = model.parameters();
  int64_t bytes = 0;
  for (auto p = params.rbegin(); p != params.rend(); ++p) {
    const int64_t b = p->numel() * static_cast<int64_t>(p->element_size());
    if (buckets_.empty() || (bytes > 0 && bytes + b > kBucketBytes)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().push_back(*p);
    bytes += b;
  }
}

std::vector<float> GradBuckets::sync(torch::nn::Module& model, DistGroup& group, const std::vector<float>& flags,
                                     const torch::Device& device) {
  torch::NoGradGuard no_grad;
  if (buckets_.empty()) build(model);
  // The last bucket also carries the BN running statistics, rank 0's values and zeros elsewhere, so
  // the sum is rank 0's statistics (DDP's broadcast_buffers) without another round trip; then the flags.
  std::vector<torch::Tensor> stats;
  for (auto& b : model.buffers())
    if (b.is_floating_point()) stats.push_back(b);
  std::vector<torch::Tensor> flats;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    std::vector<torch::Tensor> parts;
    for (auto& p : buckets_[b])
      parts.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}, p.options()));
    if (b + 1 == buckets_.size()) {
      for (auto& s : stats) parts.push_back(group.rank() == 0 ? s.reshape({-1}) : torch::zeros({s.numel()}, s.options()));
      parts.push_back(torch::tensor(flags, torch::kFloat).to(device));
    }
    flats.push_back(torch::cat(parts));
  }
  group.allreduce_sum(flats);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    int64_t off = 0;
    for (auto& p : buckets_[b]) {
      auto g = flats[b].slice(0, off, off + p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(g);
      else p.mutable_grad() = torch::empty_like(p).copy_(g);
      off += p.numel();
    }
    if (b + 1 == buckets_.size())
      for (auto& s : stats) {
        s.copy_(flats[b].slice(0, off, off + s.numel()).view(s.sizes()));
        off += s.numel();
      }
  }
  auto tail = flats.back().slice(0, flats.back().numel() - static_cast<int64_t>(flags.size())).to(torch::kCPU);
  return std::vector<float>(tail.data_ptr<float>(), tail.data_ptr<float>() + tail.numel());
}

}  // namespace cifake
