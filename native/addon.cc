// Module init only: registers the Session class and the stateless functions. Every function
// turns C++ exceptions into JS errors (guarded, and NODE_ADDON_API_CPP_EXCEPTIONS_ALL as a net).
#include "checkpoint.h"
#include "convert.h"
#include "dist_binding.h"
#include "gradcheck.h"
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

Napi::Object info_object(Napi::Env env);

// info() -> { torchVersion, torchSource, threads, cuda: { available, built, devices: [{ index, name, memory }] }, distributed, config }
Napi::Value Info(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, [&] { return info_object(env); });
}

Napi::Object info_object(Napi::Env env) {
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
  const int n = static_cast<int>(arg_int(info[0], "n", 1, 1, 4096));
  guarded(info.Env(), [&] { at::set_num_threads(n); });
  return info.Env().Undefined();
}

// shutdownAll(): the process is exiting; cancel every job and join every worker thread.
Napi::Value ShutdownAll(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), shutdown_for_exit());
}

// readCheckpointMeta(path) -> metaJson (synchronous; reads a small file)
Napi::Value ReadCheckpointMeta(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto path = string_arg(info[0], "readCheckpointMeta: path");
  return Napi::String::New(env, guarded(env, [&] { return read_checkpoint_meta(path); }));
}

// gradientCheck(spec, seed) -> { maxAbsError, maxRelError, checked }
Napi::Value GradientCheck(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto spec = to_model_spec(info[0]);
  auto seed = static_cast<uint64_t>(arg_int(info[1], "seed", 1, 0, int64_t(1) << 53));
  return gradcheck_result_to_js(env, guarded(env, [&] { return gradient_check(spec, seed); }));
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
  install_exit_handler();
  exports.Set("Session", Session::Init(env));
  exports.Set("DistGroup", DistGroupWrap::Init(env));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("shutdownAll", Napi::Function::New(env, ShutdownAll, "shutdownAll"));
  exports.Set("readCheckpointMeta", Napi::Function::New(env, ReadCheckpointMeta, "readCheckpointMeta"));
  exports.Set("gradientCheck", Napi::Function::New(env, GradientCheck, "gradientCheck"));
  RegisterJpeg(env, exports);
  return exports;
}

NODE_API_MODULE(cifake_native, InitAddon)
