// N-API registration of the batch JPEG decoder (see jpeg.h). addon.cc calls RegisterJpeg(env, exports).
// Without CIFAKE_WITH_JPEG (no libjpeg found by CMake) RegisterJpeg adds nothing and the TypeScript
// side decodes JPEGs with sharp instead.
#pragma once

#include <napi.h>

void RegisterJpeg(Napi::Env env, Napi::Object exports);
