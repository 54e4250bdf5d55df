#include "random.h"

#include <ATen/CPUGeneratorImpl.h>
#ifdef CIFAKE_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

#include <mutex>

namespace cifake {

uint64_t mix_seed(uint64_t seed, int64_t epoch) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFFULL;
}

at::Generator make_generator(const torch::Device& device, uint64_t seed) {
#ifdef CIFAKE_WITH_CUDA
  if (device.is_cuda()) {
    auto g = at::cuda::detail::createCUDAGenerator(device.has_index() ? device.index() : 0);
    g.set_current_seed(seed);
    return g;
  }
#endif
  return at::detail::createCPUGenerator(seed);
}

at::Generator seeded_init(uint64_t seed, const std::function<void()>& init) {
  static std::mutex init_mutex;
  std::lock_guard<std::mutex> lock(init_mutex);
  auto global = at::detail::getDefaultCPUGenerator();
  torch::Tensor saved;
  {
    std::lock_guard<std::mutex> g(global.mutex());
    saved = global.get_state();
    global.set_current_seed(seed);
  }
  struct Restore {
    at::Generator& g;
    torch::Tensor& s;
    ~Restore() {
      std::lock_guard<std::mutex> l(g.mutex());
      g.set_state(s);
    }
  } restore{global, saved};
  init();
  std::lock_guard<std::mutex> g(global.mutex());
  return global.clone();
}

}  // namespace cifake
