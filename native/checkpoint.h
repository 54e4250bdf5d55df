// Checkpoints: one libtorch archive holding cifake_format, cifake_meta (JSON from TypeScript), the
// model, the optimizer, optionally the weight average (ema.h), and cifake_checksum, a 64-bit hash
// over every other entry of the archive (every saved tensor's bytes, the meta, the optimizer's
// counters) in a fixed order. Loading refuses a mismatch; checkpoints written before the checksum
// existed still load.
#pragma once

#include "ema.h"

#include <torch/torch.h>

#include <string>

namespace cifake {

// Writes beside `path`, then renames over it, so a half-written checkpoint never sits at `path`.
// `ema`: the weight average to keep beside the weights (for resuming), or null.
void save_checkpoint(const std::string& path, const std::string& meta, const torch::nn::Module& model,
                     const torch::optim::Optimizer& optimizer, const WeightAverage* ema = nullptr);

// An opened checkpoint whose checksum was verified (when it has one).
struct OpenCheckpoint {
  torch::serialize::InputArchive archive;
  std::string meta;
};
void open_checkpoint(const std::string& path, const torch::Device& device, OpenCheckpoint& out);

std::string read_checkpoint_meta(const std::string& path);

// Copies the checkpoint's weights into `model` (every tensor read and shape-checked first, so a
// mismatching checkpoint leaves the model as it was), the optimizer state when `optimizer`, and
// the weight average when `ema` (left empty when the checkpoint has none).
void load_weights(const std::string& path, OpenCheckpoint& ckpt, torch::nn::Module& model,
                  torch::optim::Optimizer* optimizer, WeightAverage* ema = nullptr);

}  // namespace cifake
