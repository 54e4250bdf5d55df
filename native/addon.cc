// Module init only: registers the Session class and the stateless functions.
#include "convert.h"
#include "dist_binding.h"
#include "jpeg_binding.h"
#include "session.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/torch.h>

#ifdef CIFAKE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#if defined(__GLIBC__)
#include <malloc.h>

#include <cstdlib>
#endif

namespace cifake {
namespace {

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

// info() -> { torchVersion, torchSource, threads, cuda: { available, built, devices: [{ index, name, memory }] }, distributed, config }
Napi::Value Info(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("torchVersion", Napi::String::New(env, torch_version()));
  o.Set("torchSource", Napi::String::New(env, CIFAKE_TORCH_SOURCE));
  o.Set("threads", Napi::Number::New(env, at::get_num_threads()));
  o.Set("config", Napi::String::New(env, at::show_config()));
  o.Set("parallel", Napi::String::New(env, at::get_parallel_info()));
  auto cuda = Napi::Object::New(env);
#ifdef CIFAKE_WITH_CUDA
  cuda.Set("built", Napi::Boolean::New(env, true));
#else
  cuda.Set("built", Napi::Boolean::New(env, false));
#endif
  bool available = torch::cuda::is_available();
  cuda.Set("available", Napi::Boolean::New(env, available));
  auto devices = Napi::Array::New(env);
#ifdef CIFAKE_WITH_CUDA
  if (available) {
    for (int i = 0; i < static_cast<int>(torch::cuda::device_count()); ++i) {
      auto* p = at::cuda::getDeviceProperties(i);
      auto d = Napi::Object::New(env);
      d.Set("index", Napi::Number::New(env, i));
      d.Set("name", Napi::String::New(env, p->name));
      d.Set("memory", Napi::Number::New(env, double(p->totalGlobalMem)));
      d.Set("capability", Napi::String::New(env, std::to_string(p->major) + "." + std::to_string(p->minor)));
      devices.Set(uint32_t(i), d);
    }
  }
#endif
  cuda.Set("devices", devices);
  o.Set("cuda", cuda);
  o.Set("distributed", Napi::Boolean::New(env, dist_available()));
  return o;
}

// setThreads(n): intra-op threads of the calling thread's pool (new sessions pass `threads` instead).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("n", info[0]);
  at::set_num_threads(static_cast<int>(get_int(o, "n", 1, 1, 4096)));
  return info.Env().Undefined();
}

// readCheckpointMeta(path) -> metaJson (synchronous; reads a small file)
Napi::Value ReadCheckpointMeta(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "readCheckpointMeta: path must be a string");
  try {
    return Napi::String::New(env, read_checkpoint_meta(info[0].As<Napi::String>().Utf8Value()));
  } catch (...) {
    throw Napi::Error::New(env, current_exception_message());
  }
}

// gradientCheck(spec, seed) -> { maxAbsError, maxRelError, checked }
Napi::Value GradientCheck(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto spec = to_model_spec(info[0]);
  auto o = Napi::Object::New(env);
  o.Set("seed", info[1]);
  auto seed = static_cast<uint64_t>(get_int(o, "seed", 1, 0, int64_t(1) << 53));
  try {
    auto r = gradient_check(spec, seed);
    auto out = Napi::Object::New(env);
    out.Set("maxAbsError", Napi::Number::New(env, r.max_abs_error));
    out.Set("maxRelError", Napi::Number::New(env, r.max_rel_error));
    out.Set("checked", Napi::Number::New(env, double(r.checked)));
    return out;
  } catch (...) {
    throw Napi::Error::New(env, current_exception_message());
  }
}

}  // namespace
}  // namespace cifake

// Training allocates and frees the same multi-MB activation buffers every step. With glibc's
// defaults they are mmapped or trimmed back to the kernel and page-faulted in again each time,
// which made batch 256 run at half speed here. Keep freed memory in the process instead (unless
// the user tuned malloc through the environment).
static void keep_freed_memory() {
#if defined(__GLIBC__)
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 256 << 20);
  if (!std::getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace cifake;
  keep_freed_memory();
  exports.Set("Session", Session::Init(env));
  exports.Set("DistGroup", DistGroupWrap::Init(env));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("readCheckpointMeta", Napi::Function::New(env, ReadCheckpointMeta, "readCheckpointMeta"));
  exports.Set("gradientCheck", Napi::Function::New(env, GradientCheck, "gradientCheck"));
  RegisterJpeg(env, exports);
  return exports;
}

NODE_API_MODULE(cifake_native, InitAddon)
