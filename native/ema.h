// An exponential moving average of a model's weights (Polyak averaging, as timm's ModelEmaV2 and
// TensorFlow's ExponentialMovingAverage keep it): after every optimizer step each floating-point
// parameter and buffer moves toward the model's, ema = d * ema + (1 - d) * w, with the decay ramped
// up as d = min(decay, (1 + n) / (10 + n)) over the first updates so that early averages do not
// stay near the initial weights. Integer buffers (BN's batch counter) are copied.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace cifake {

class WeightAverage {
 public:
  bool empty() const { return tensors_.empty(); }
  // The model holds the averaged weights (and this object the trained ones) between two swaps.
  bool swapped() const { return swapped_; }

  // Starts the average at the model's weights, unless one is running already.
  void start(torch::nn::Module& model);
  // One step of the average toward the model's weights (starting it first when none is running).
  void update(torch::nn::Module& model, double decay);
  // Exchanges the model's weights with the averaged ones (throws when nothing was averaged yet).
  void swap(torch::nn::Module& model);

  // Writes / reads the average as an archive of tensors in the model's parameter-then-buffer
  // order; read checks every shape against the model before changing anything.
  void write(torch::serialize::OutputArchive& archive) const;
  void read(torch::serialize::InputArchive& archive, torch::nn::Module& model, const std::string& path);

 private:
  std::vector<torch::Tensor> tensors_;
  int64_t updates_ = 0;
  bool swapped_ = false;
};

}  // namespace cifake
