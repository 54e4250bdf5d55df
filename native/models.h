// The CIFAKE model families as one configurable network: a stack of conv blocks then a dense head.
//   original    (Bird & Lotfi): conv3x3 + ReLU + maxpool2 blocks, valid padding, dense head, no BN.
//   lightweight: conv3x3 (same) + BN + ReLU + maxpool2 blocks, dense 64 + ReLU, dropout 0.5.
//   hoc:         as lightweight, but each conv is a diagonal higher-order block conv(x) + conv'(x^2).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace cifake {

constexpr int64_t kImageSize = 32;
constexpr int64_t kChannels = 3;

struct ModelSpec {
  std::string family = "lightweight";  // original | lightweight | hoc (informational; the flags decide)
  std::vector<int64_t> conv_filters = {16, 32};
  std::vector<int64_t> dense = {64};
  double dropout = 0.5;
  bool same_padding = true;
  bool batch_norm = true;
  bool hoc = false;
  bool fused_hoc = true;  // hoc only: one conv over [x, x^2] instead of two convs, same parameters
  int64_t convs_per_block = 1;  // 3x3 convs per block; only the first is higher-order
  bool residual = false;        // block output = relu(bn(last conv) + shortcut(input)), ResNet's basic block
  int64_t members = 1;          // > 1: that many independent networks of this spec, logits averaged
};

// Checks what keeps the network buildable; throws std::invalid_argument naming the field.
void validate_spec(const ModelSpec& spec);

// Every parameter, then every buffer, detached (sharing the model's storage): the fixed order of
// snapshots, broadcasts and the weight average.
std::vector<torch::Tensor> weight_tensors(torch::nn::Module& model);

// A block's convolutions for inference with each batch norm folded into the conv before it: in
// eval mode BN is a per-channel affine map, so conv + BN is one conv with W' = W s and
// b' = (b - mean) s + beta, s = gamma / sqrt(var + eps). Computed from the live weights, so only
// valid until they change.
struct FoldedBlock {
  torch::Tensor w, b;  // the first conv (HOC: over [x, x^2], both kernels stacked)
  std::vector<torch::Tensor> more_w, more_b;
  torch::Tensor proj_w, proj_b;  // the residual projection, when there is one
};

// One conv block: conv (+ conv' on x^2) (+ BN) + ReLU, then convs_per_block - 1 more conv (+ BN) +
// ReLU, optionally with a residual shortcut (identity, or 1x1 conv + BN when the width changes
// across the block), then maxpool 2.
class ConvBlockImpl : public torch::nn::Module {
 public:
  ConvBlockImpl(int64_t in_channels, int64_t out_channels, const ModelSpec& spec);
  // Activation after ReLU, before pooling (the Grad-CAM layer).
  torch::Tensor features(const torch::Tensor& x) { return pre_activation(x).relu_(); }
  torch::Tensor pool(const torch::Tensor& a) { return torch::max_pool2d(a, 2); }
  // pool(features(x)), computed as relu(maxpool(.)): the same values (ReLU is monotone, so it
  // commutes with max), with the ReLU and its backward on a quarter of the elements.
  torch::Tensor pooled_features(const torch::Tensor& x) { return pool(pre_activation(x)).relu_(); }

  FoldedBlock fold() const;
  // pooled_features in eval mode, from fold()'s weights: the same values up to rounding.
  torch::Tensor pooled_features(const torch::Tensor& x, const FoldedBlock& f) const;

 private:
  torch::Tensor first_conv(const torch::Tensor& x);
  // HOC, fused: conv and conv' as one kernel over [x, x^2] (stacked weights, summed biases).
  std::pair<torch::Tensor, torch::Tensor> stacked_hoc_kernel() const;
  // Everything up to the block's last ReLU.
  torch::Tensor pre_activation(const torch::Tensor& x);

  bool hoc_, fused_, residual_;
  int64_t padding_;
  torch::nn::Conv2d conv_{nullptr}, conv_sq_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
  std::vector<torch::nn::Conv2d> more_convs_;  // conv2, conv3, ...
  std::vector<torch::nn::BatchNorm2d> more_bns_;
  torch::nn::Conv2d proj_{nullptr};  // residual shortcut when in_channels != out_channels
  torch::nn::BatchNorm2d proj_bn_{nullptr};
};
TORCH_MODULE(ConvBlock);

class CifakeNetImpl : public torch::nn::Module {
 public:
  explicit CifakeNetImpl(const ModelSpec& spec);

  // x: float N x 3 x 32 x 32 in [0, 1]. Returns logits N (an ensemble: the members' mean logit).
  // When tap_layer names a layer ("conv1".."convK" before pooling, "pool1".."poolK" after), its
  // activation is stored in *tap from the same forward pass. An ensemble's tap is its members'
  // activations concatenated on the channel axis, and each member continues from its slice of it,
  // so gradients with respect to *tap are those of the mean logit.
  torch::Tensor forward(const torch::Tensor& x, const std::string& tap_layer = "",
                        torch::Tensor* tap = nullptr);
  // Training: every member's logit, N x members (the loss is each member's own).
  torch::Tensor forward_members(const torch::Tensor& x);
  int64_t members() const { return spec_.members; }

  // Inference (eval mode, no taps): fold_batch_norm() once, then forward_folded per chunk.
  std::vector<FoldedBlock> fold_batch_norm() const;
  torch::Tensor forward_folded(const torch::Tensor& x, const std::vector<FoldedBlock>& folded);

  std::vector<std::string> layer_names() const;
  std::string default_cam_layer() const;
  // Spatial size of a layer's activation (square).
  int64_t layer_size(const std::string& name) const;
  int64_t parameter_count() const;
  const ModelSpec& spec() const { return spec_; }
  // Dropout draws from this generator (the owning trainer's); unset: libtorch's global one.
  void set_generator(at::Generator g);

 private:
  // One network's forward split at a layer: the layer's activation, and the logits from it.
  torch::Tensor forward_until(const torch::Tensor& x, const std::string& layer);
  torch::Tensor forward_from(const std::string& layer, const torch::Tensor& activation);
  torch::Tensor head(torch::Tensor x);
  int64_t block_of(const std::string& layer, bool* before_pool) const;

  ModelSpec spec_;
  std::vector<std::shared_ptr<CifakeNetImpl>> members_;  // an ensemble holds only these
  std::vector<ConvBlock> blocks_;
  std::vector<int64_t> sizes_;  // spatial size after each block's conv (before pool)
  std::vector<torch::nn::Linear> dense_;
  c10::optional<at::Generator> generator_;
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(CifakeNet);

// Puts a module in eval mode for a scope and restores its previous mode, also on exceptions.
class EvalModeScope {
 public:
  explicit EvalModeScope(torch::nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalModeScope() { m_.train(was_training_); }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  torch::nn::Module& m_;
  bool was_training_;
};

}  // namespace cifake
