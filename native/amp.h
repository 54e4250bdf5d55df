// Mixed precision: forward passes under autocast (bf16 on CPU or CUDA, fp16 on CUDA); fp16 adds
// dynamic loss scaling (PyTorch GradScaler's defaults: 2^16, x2 after 2000 finite steps, /2 on overflow).
#pragma once

#include <torch/torch.h>

#include <string>

namespace cifake {

enum class Amp { none, bf16, fp16 };
Amp parse_amp(const std::string& name, const torch::Device& device);

struct LossScaler {
  double scale = 65536.0;
  int64_t good_steps = 0;
  int64_t skipped_steps = 0;
  // Unscales the gradients of `m` and updates the scale; false when they overflowed (skip the step).
  bool unscale_and_check(torch::nn::Module& m);
};

// Forward passes inside this scope run under autocast in the given precision (none: no-op).
class AutocastScope {
 public:
  AutocastScope(Amp amp, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_;
  c10::DeviceType type_;
};

}  // namespace cifake
