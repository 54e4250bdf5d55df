// The training state of one model: device-resident data, the optimizer, its own random generator,
// the epoch loop, prediction and in-memory snapshots. No N-API types here: every method runs on the
// session's worker thread (see worker.h) and takes plain C++ values. Mixed precision is amp.h,
// augmentation augment.h, Grad-CAM gradcam.h, checkpoints checkpoint.h, the data-parallel
// gradient exchange dist_buckets.h.
#pragma once

#include "amp.h"
#include "augment.h"
#include "dist.h"
#include "dist_buckets.h"
#include "ema.h"
#include "gradcam.h"
#include "models.h"

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

struct EpochOptions {
  std::string data;  // key of a dataset given to set_data
  int64_t batch_size = 32;
  uint64_t seed = 42;
  int64_t epoch = 0;  // with seed, fixes shuffling, dropout and augmentation of this epoch
  bool shuffle = true;
  double lr = -1;  // > 0: set the optimizer's learning rate first
  AugmentConfig augment;
  double label_smoothing = 0;  // BCE targets y (1 - e) + e / 2
  double ema_decay = 0;        // > 0: update the weight average (ema.h) after every step
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

torch::Device parse_device(const std::string& name);  // cpu | cuda | cuda:N | auto

class Trainer {
 public:
  // channels_last: NHWC activations and conv weights (oneDNN's native layout on CPU, tensor cores on GPU).
  Trainer(const ModelSpec& spec, const std::string& device, uint64_t seed,
          const OptimizerConfig& optimizer, bool channels_last = false, const std::string& amp = "none");

  // images: uint8 CPU tensor n x 3 x 32 x 32 (CHW); labels: uint8 n of 0/1, or undefined (unlabelled).
  void set_data(const std::string& key, const torch::Tensor& images, const torch::Tensor& labels);
  void drop_data(const std::string& key);

  EpochResult train_epoch(const EpochOptions& opts, const std::function<void(const EpochProgress&)>& progress,
                          const std::function<bool()>& cancelled);

  // Logits for a stored dataset, or for a uint8 CPU tensor of images.
  std::vector<float> predict(const std::string& key, int64_t batch_size);
  std::vector<float> predict(const torch::Tensor& images, int64_t batch_size);

  GradCamResult gradcam(const torch::Tensor& images, const GradCamOptions& opts);

  void snapshot();  // keep a copy of the weights (parameters and buffers) in memory
  void restore();   // put the snapshot back

  // Exchanges the model's weights with their moving average (epochs with ema_decay keep it); true:
  // the model now holds the average. Training refuses to run while it does.
  bool swap_ema();

  // With the weight average when the model holds the trained weights (what resuming needs).
  void save(const std::string& path, const std::string& meta) const;
  // Loads weights (and the optimizer state and weight average when with_optimizer; loading the
  // weights alone drops the average); returns the stored meta JSON.
  std::string load(const std::string& path, bool with_optimizer);

  // Named parameters and buffers, copied to CPU float (for tests and inspection).
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  // Replaces every parameter and buffer by name; throws std::invalid_argument naming a missing,
  // unknown or mis-sized tensor before changing anything.
  void set_state(const std::vector<std::pair<std::string, std::vector<float>>>& values);

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
  struct Dataset {
    torch::Tensor images;  // uint8 n x 3 x 32 x 32 on device_
    torch::Tensor labels;  // float n on device_, undefined when unlabelled
  };
  struct Epoch;  // the running totals of one train_epoch (trainer.cc)

  torch::Tensor to_input(const torch::Tensor& u8) const;
  torch::Tensor upload(const torch::Tensor& host) const;
  std::vector<float> predict_tensor(const torch::Tensor& images, int64_t batch_size);
  const Dataset& labelled(const std::string& key) const;
  void begin_epoch(Epoch& e, const EpochOptions& o, const Dataset& ds);
  void forward_backward(Epoch& e, const EpochOptions& o, const Dataset& ds, int64_t lo, int64_t hi, int64_t len);
  bool exchange_and_step(Epoch& e, bool stop_here);
  bool report(Epoch& e, const EpochOptions& o, const std::function<void(const EpochProgress&)>& progress);
  EpochResult finish_epoch(Epoch& e);

  ModelSpec spec_;
  torch::Device device_;
  bool channels_last_ = false;
  Amp amp_ = Amp::none;
  LossScaler scaler_;
  CifakeNet model_{nullptr};
  at::Generator gen_;  // dropout and augmentation (shuffling has a generator per epoch)
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  OptimizerConfig optimizer_config_;
  std::map<std::string, Dataset> data_;
  std::vector<torch::Tensor> snapshot_;
  WeightAverage ema_;
  std::shared_ptr<DistGroup> group_;
  GradBuckets buckets_;
};

}  // namespace cifake
