// Grad-CAM and HiResCAM of one forward and backward pass, in eval mode (dropout off, BN on its
// running statistics), so images are explained independently and the model is left untouched.
#pragma once

#include "models.h"

#include <string>
#include <vector>

namespace cifake {

struct GradCamOptions {
  std::string layer;       // empty: the model's default (last conv block before pooling)
  int target = -1;         // -1 predicted class, 0 FAKE, 1 REAL
  bool hires = false;      // HiResCAM instead of Grad-CAM
  int64_t out_size = kImageSize;
  bool tensors = false;    // also return the layer's activations and the gradients (other CAM methods in TS)
};

struct GradCamResult {
  int64_t n = 0, layer_size = 0, out_size = 0;
  std::string layer;
  std::vector<float> raw;        // n x layer_size^2, ReLU'd, not normalised
  std::vector<float> upsampled;  // n x out_size^2, bilinear (align_corners false) of raw
  std::vector<float> raw_max;    // n
  std::vector<float> logits;     // n
  std::vector<int32_t> targets;  // n: the class explained
  int64_t channels = 0;            // with tensors:
  std::vector<float> activations;  // n x channels x layer_size^2
  std::vector<float> gradients;    // n x channels x layer_size^2: d(score of the explained class) / d(activations)
};

// Throws std::invalid_argument naming the valid layers when `layer` is not one of the model's.
void check_cam_layer(CifakeNetImpl& model, const std::string& layer);

// x: the float model input, N x 3 x 32 x 32 on the model's device.
GradCamResult grad_cam(CifakeNetImpl& model, const torch::Tensor& x, const GradCamOptions& opts);

}  // namespace cifake
