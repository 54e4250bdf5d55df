// Random streams. Each trainer draws shuffling, dropout and augmentation from its own generator, so
// two models training at once in one process do not perturb each other. libtorch's global
// generator is touched only while a module initialises its weights (torch::nn's initialisers take
// no generator), under a process-wide lock and with its state restored afterwards.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace cifake {

// Distinct, reproducible RNG streams for (seed, epoch).
uint64_t mix_seed(uint64_t seed, int64_t epoch);

// A fresh generator for `device` (CPU, or the CUDA device's) seeded with `seed`.
at::Generator make_generator(const torch::Device& device, uint64_t seed);

// Runs `init` with the global CPU generator seeded with `seed` (what torch::manual_seed(seed) then
// construction did before), and returns a CPU generator that continues that stream after `init`.
at::Generator seeded_init(uint64_t seed, const std::function<void()>& init);

}  // namespace cifake
