// The only place that turns N-API values into the plain C++ structs of trainer.h and back.
// Every getter throws a Napi::TypeError naming the field.
#pragma once

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

// A Uint8Array (or Buffer) argument; `what` names it in errors.
Napi::Uint8Array get_bytes(const Napi::Value& v, const char* what);
// Checks a batch of CHW images (and optional labels) and returns the image count.
int64_t check_images(const Napi::Uint8Array& images, const Napi::Uint8Array* labels);

Napi::Float32Array to_float32_array(Napi::Env env, const std::vector<float>& v);

}  // namespace cifake
