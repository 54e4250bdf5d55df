// The only place that turns N-API values into the plain C++ structs of trainer.h and back.
// Every getter throws a Napi::TypeError naming the field. Defaults and ranges of the model and
// training options are TypeScript's (src/config.ts); the checks here only keep bad values from
// crashing the process (wrong types, NaN, sizes that make tensors invalid).
#pragma once

#include "gradcam.h"
#include "gradcheck.h"
#include "trainer.h"

#include <napi.h>

namespace cifake {

ModelSpec to_model_spec(const Napi::Value& v);
OptimizerConfig to_optimizer(const Napi::Value& v);
EpochOptions to_epoch_options(const Napi::Value& v);
GradCamOptions to_gradcam_options(const Napi::Value& v);

std::string get_string(const Napi::Object& o, const char* key, const std::string& fallback);
double get_number(const Napi::Object& o, const char* key, double fallback);
int64_t get_int(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, int64_t max);
bool get_bool(const Napi::Object& o, const char* key, bool fallback);
// A positional argument read as an integer option named `what` (undefined: fallback).
int64_t arg_int(const Napi::Value& v, const char* what, int64_t fallback, int64_t min, int64_t max);
// An optional options object (undefined/null: empty); anything else is a TypeError naming `what`.
Napi::Object options_arg(const Napi::Value& v, const char* what);
std::string string_arg(const Napi::Value& v, const char* what);

// A Uint8Array (or Buffer) argument; `what` names it in errors.
Napi::Uint8Array get_bytes(const Napi::Value& v, const char* what);
// Checks a batch of CHW images (and optional labels) and returns the image count.
int64_t check_images(const Napi::Uint8Array& images, const Napi::Uint8Array* labels);
// Copies JS bytes into a CPU tensor of `shape` on the JS thread: the worker never reads a JS
// buffer, which may be detached (ArrayBuffer.prototype.transfer, postMessage) while it runs.
torch::Tensor copy_to_tensor(const Napi::Uint8Array& bytes, at::IntArrayRef shape);

// C++ results -> JS values.
Napi::Float32Array to_float32_array(Napi::Env env, const std::vector<float>& v);
Napi::Float64Array to_float64_array(Napi::Env env, const std::vector<double>& v);
Napi::Uint8Array to_uint8_array(Napi::Env env, const std::vector<uint8_t>& v);
Napi::Object progress_to_js(Napi::Env env, const EpochProgress& p);
Napi::Object epoch_result_to_js(Napi::Env env, const EpochResult& r);
Napi::Object gradcam_result_to_js(Napi::Env env, const GradCamResult& r);
Napi::Object gradcheck_result_to_js(Napi::Env env, const GradCheckResult& r);
Napi::Object state_to_js(Napi::Env env, const std::vector<std::pair<std::string, torch::Tensor>>& state);
// { [name]: Float32Array } -> copies of the arrays; TypeError naming a value that is not a Float32Array.
std::vector<std::pair<std::string, std::vector<float>>> state_from_js(const Napi::Value& v);
Napi::Object describe_to_js(Napi::Env env, CifakeNetImpl& model, const torch::Device& device);

}  // namespace cifake
