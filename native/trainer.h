// The training state of one model: device-resident data, the optimizer, the epoch loop,
// prediction, Grad-CAM, in-memory snapshots and checkpoints. No N-API types here: every method
// runs on the session's worker thread (see worker.h) and takes plain C++ values.
#pragma once

#include "dist.h"
#include "models.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cifake {

struct OptimizerConfig {
  std::string name = "adam";  // adam | adamw
  double lr = 1e-3;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999;
};

struct AugmentConfig {
  bool hflip = false;
  int64_t shift = 0;  // max translation in pixels, zero fill
};

struct EpochOptions {
  std::string data;  // key of a dataset given to set_data
  int64_t batch_size = 32;
  uint64_t seed = 42;
  int64_t epoch = 0;  // with seed, fixes shuffling, dropout and augmentation of this epoch
  bool shuffle = true;
  double lr = -1;  // > 0: set the optimizer's learning rate first
  AugmentConfig augment;
  double label_smoothing = 0;  // BCE targets y (1 - e) + e / 2
  double progress_interval_s = 0.2;
};

struct EpochProgress {
  int64_t batch = 0, batches = 0, images = 0;
  double loss = 0, accuracy = 0, images_per_sec = 0;
};

struct EpochResult {
  double loss = 0, accuracy = 0, seconds = 0, images_per_sec = 0;
  int64_t images = 0, batches = 0;
  bool cancelled = false;
  bool non_finite = false;  // the loss became NaN or infinite
  double comm_seconds = 0;  // time inside gradient and buffer collectives (data-parallel runs)
  int64_t skipped_steps = 0;  // fp16: steps skipped because the scaled gradients overflowed
  double loss_scale = 0;      // fp16: the loss scale at the end of the epoch
};

struct GradCamOptions {
  std::string layer;       // empty: the model's default (last conv block before pooling)
  int target = -1;         // -1 predicted class, 0 FAKE, 1 REAL
  bool hires = false;      // HiResCAM instead of Grad-CAM
  int64_t out_size = kImageSize;
};

struct GradCamResult {
  int64_t n = 0, layer_size = 0, out_size = 0;
  std::string layer;
  std::vector<float> raw;        // n x layer_size^2, ReLU'd, not normalised
  std::vector<float> upsampled;  // n x out_size^2, bilinear (align_corners false) of raw
  std::vector<float> raw_max;    // n
  std::vector<float> logits;     // n
  std::vector<int32_t> targets;  // n: the class explained
};

struct Checkpoint {
  std::string meta;  // JSON written by the TypeScript side (spec, config, epoch, ...)
};

torch::Device parse_device(const std::string& name);  // cpu | cuda | cuda:N | auto

// Mixed precision: forward passes under autocast (bf16 on CPU or CUDA, fp16 on CUDA); fp16 adds
// dynamic loss scaling (PyTorch GradScaler's defaults: 2^16, x2 after 2000 finite steps, /2 on overflow).
enum class Amp { none, bf16, fp16 };
Amp parse_amp(const std::string& name, const torch::Device& device);

struct LossScaler {
  double scale = 65536.0;
  int64_t good_steps = 0;
  int64_t skipped_steps = 0;
};

class Trainer {
 public:
  // channels_last: NHWC activations and conv weights (oneDNN's native layout on CPU, tensor cores on GPU).
  Trainer(const ModelSpec& spec, const std::string& device, uint64_t seed,
          const OptimizerConfig& optimizer, bool channels_last = false, const std::string& amp = "none");

  // images: n x 3 x 32 x 32 uint8 (CHW); labels: n values of 0/1, or null for unlabelled data.
  void set_data(const std::string& key, const uint8_t* images, const uint8_t* labels, int64_t n);
  void drop_data(const std::string& key);

  EpochResult train_epoch(const EpochOptions& opts, const std::function<void(const EpochProgress&)>& progress,
                          const std::function<bool()>& cancelled);

  // Logits for a stored dataset, or for n raw images.
  std::vector<float> predict(const std::string& key, int64_t batch_size);
  std::vector<float> predict(const uint8_t* images, int64_t n, int64_t batch_size);

  GradCamResult gradcam(const uint8_t* images, int64_t n, const GradCamOptions& opts);

  void snapshot();  // keep a copy of the weights (parameters and buffers) in memory
  void restore();   // put the snapshot back

  void save(const std::string& path, const std::string& meta) const;
  // Loads weights (and the optimizer state when with_optimizer); returns the stored meta JSON.
  std::string load(const std::string& path, bool with_optimizer);

  // Named parameters and buffers, copied to CPU float (for tests and inspection).
  std::vector<std::pair<std::string, torch::Tensor>> state() const;

  // Data-parallel training: with a group, each epoch trains this rank's slice of every global batch,
  // all-reduces the gradients before each step and keeps rank 0's BN running statistics
  // (PyTorch DDP's defaults). Null leaves the group.
  void set_group(std::shared_ptr<DistGroup> group) { group_ = std::move(group); }
  // Overwrites this rank's parameters and buffers with rank `root`'s.
  void broadcast_state(int root);

  void set_lr(double lr);
  double lr() const;
  CifakeNet& model() { return model_; }
  const torch::Device& device() const { return device_; }

 private:
  torch::Tensor to_input(const torch::Tensor& u8) const;
  torch::Tensor upload(const uint8_t* data, at::IntArrayRef shape) const;
  std::vector<float> predict_tensor(const torch::Tensor& images, int64_t batch_size);
  // Sums gradients across ranks (in buckets) together with `flags`, hands every rank rank 0's BN
  // running statistics; returns the summed flags.
  std::vector<float> sync_gradients(const std::vector<float>& flags);
  // fp16: unscales the gradients and updates the loss scale; false when they overflowed (skip the step).
  bool unscale_and_check();

  struct Dataset {
    torch::Tensor images;  // uint8 n x 3 x 32 x 32 on device_
    torch::Tensor labels;  // float n on device_, undefined when unlabelled
  };
  ModelSpec spec_;
  torch::Device device_;
  bool channels_last_ = false;
  Amp amp_ = Amp::none;
  LossScaler scaler_;
  CifakeNet model_{nullptr};
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  OptimizerConfig optimizer_config_;
  std::map<std::string, Dataset> data_;
  std::vector<torch::Tensor> snapshot_;
  std::shared_ptr<DistGroup> group_;
  std::vector<std::vector<torch::Tensor>> grad_buckets_;  // parameters grouped for the all-reduce
};

// Static helpers that need no session.
std::string read_checkpoint_meta(const std::string& path);

struct GradCheckResult {
  double max_abs_error = 0, max_rel_error = 0;
  int64_t checked = 0;
};
// Compares autograd gradients of the BCE loss with central finite differences in float64.
GradCheckResult gradient_check(const ModelSpec& spec, uint64_t seed);

}  // namespace cifake
