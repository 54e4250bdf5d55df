// Native JPEG decoding for the data pipeline (src/data/decode.ts):
//
// decodeJpegBatch(blob: Uint8Array, offsets: Uint32Array (N + 1), size: number, out?: Uint8Array)
//   => Promise<{ images: Buffer | out (N * 3 * size * size, CHW per image), status: Int32Array, messages: string[] }>
//   Image i is blob[offsets[i], offsets[i + 1]). Decoding runs in a Napi::AsyncWorker on the libuv
//   pool; the caller runs several calls in parallel to use several cores. With `out` (exactly
//   N * 3 * size * size bytes) the images are written there instead of a new Buffer. status values
//   are cifake::JpegStatus (0 ok, 1 corrupt, 2 wrong size, 3 unsupported: use sharp); messages[i]
//   is '' for ok images, else libjpeg's message or the reason; failed slots are zeroed.
//   Only with CIFAKE_WITH_JPEG.

#include "jpeg_binding.h"

#ifdef CIFAKE_WITH_JPEG

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "jpeg.h"
#include "jpeg_encode.h"

namespace {

class DecodeJpegWorker : public Napi::AsyncWorker {
 public:
  // The blob is copied and the images decoded into a private buffer: a JS buffer can be detached
  // (ArrayBuffer.prototype.transfer, postMessage) while the pool thread would read or write it.
  DecodeJpegWorker(Napi::Env env, Napi::Uint8Array blob, std::vector<uint32_t> offsets, int size, Napi::Uint8Array out)
      : Napi::AsyncWorker(env, "cifake:decodeJpegBatch"),
        deferred_(Napi::Promise::Deferred::New(env)),
        blob_(blob.Data(), blob.Data() + blob.ByteLength()),
        offsets_(std::move(offsets)),
        size_(size),
        count_(offsets_.size() - 1),
        images_(count_ * 3 * static_cast<size_t>(size) * static_cast<size_t>(size)),
        results_(count_) {
    if (!out.IsEmpty()) out_ref_ = Napi::Persistent(out);
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    cifake::DecodeJpegRange(blob_.data(), offsets_.data(), 0, count_, size_, images_.data(), results_.data());
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Uint8Array images;
    if (out_ref_.IsEmpty()) {
      images = Napi::Buffer<uint8_t>::Copy(env, images_.data(), images_.size());
    } else {
      images = out_ref_.Value();
      if (images.ByteLength() != images_.size()) {
        deferred_.Reject(Napi::TypeError::New(env, "decodeJpegBatch: out was detached or resized while decoding").Value());
        return;
      }
      if (!images_.empty()) std::memcpy(images.Data(), images_.data(), images_.size());
    }
    Napi::Int32Array status = Napi::Int32Array::New(env, count_);
    Napi::Array messages = Napi::Array::New(env, count_);
    for (size_t i = 0; i < count_; ++i) {
      status[i] = results_[i].status;
      messages.Set(static_cast<uint32_t>(i), Napi::String::New(env, results_[i].message));
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("images", images);
    result.Set("status", status);
    result.Set("messages", messages);
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<uint8_t> blob_;
  Napi::Reference<Napi::Uint8Array> out_ref_;  // the caller's `out`, filled on the JS thread
  std::vector<uint32_t> offsets_;
  int size_;
  size_t count_;
  std::vector<uint8_t> images_;
  std::vector<cifake::JpegResult> results_;
};

Napi::Value ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, "decodeJpegBatch: " + message).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value DecodeJpegBatchJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3) return ThrowType(env, "expected (blob: Uint8Array, offsets: Uint32Array, size: number, out?: Uint8Array)");
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return ThrowType(env, "blob must be a Buffer or Uint8Array");
  }
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    return ThrowType(env, "offsets must be a Uint32Array of N + 1 offsets");
  }
  if (!info[2].IsNumber()) return ThrowType(env, "size must be a number");
  Napi::Uint8Array blob = info[0].As<Napi::Uint8Array>();
  Napi::Uint32Array offsets_js = info[1].As<Napi::Uint32Array>();
  const double size_d = info[2].As<Napi::Number>().DoubleValue();
  if (!(size_d >= 1 && size_d <= 1024) || static_cast<double>(static_cast<int>(size_d)) != size_d) {
    return ThrowType(env, "size must be an integer in [1, 1024]");
  }
  const size_t n_offsets = offsets_js.ElementLength();
  if (n_offsets < 1) return ThrowType(env, "offsets must hold N + 1 values (at least 1)");
  std::vector<uint32_t> offsets(offsets_js.Data(), offsets_js.Data() + n_offsets);
  for (size_t i = 0; i + 1 < n_offsets; ++i) {
    if (offsets[i + 1] < offsets[i]) {
      return ThrowType(env, "offsets must be non-decreasing (offsets[" + std::to_string(i + 1) + "] < offsets[" +
                                std::to_string(i) + "])");
    }
  }
  if (offsets.back() > blob.ByteLength()) {
    return ThrowType(env, "offsets[N] = " + std::to_string(offsets.back()) + " is past the end of blob (" +
                              std::to_string(blob.ByteLength()) + " bytes)");
  }
  Napi::Uint8Array out;
  if (info.Length() >= 4 && !info[3].IsUndefined() && !info[3].IsNull()) {
    if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      return ThrowType(env, "out must be a Buffer or Uint8Array");
    }
    out = info[3].As<Napi::Uint8Array>();
    const size_t want = (n_offsets - 1) * 3 * static_cast<size_t>(size_d) * static_cast<size_t>(size_d);
    if (out.ByteLength() != want) {
      return ThrowType(env, "out has " + std::to_string(out.ByteLength()) + " bytes, expected N * 3 * size * size = " + std::to_string(want));
    }
  }
  auto* worker = new DecodeJpegWorker(env, blob, std::move(offsets), static_cast<int>(size_d), out);
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself after OnOK / OnError
  return promise;
}

// jpegRoundTrip(images, qualities, size) -> Promise<Uint8Array>: the inputs are copied when the call
// is made, so the caller may reuse or detach its buffers at once.
class JpegRoundTripWorker : public Napi::AsyncWorker {
 public:
  JpegRoundTripWorker(Napi::Env env, std::vector<uint8_t> images, std::vector<uint8_t> qualities, int size)
      : Napi::AsyncWorker(env, "cifake:jpegRoundTrip"),
        deferred_(Napi::Promise::Deferred::New(env)),
        images_(std::move(images)),
        qualities_(std::move(qualities)),
        size_(size),
        out_(images_.size()) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      cifake::JpegRoundTripRange(images_.data(), qualities_.data(), 0, qualities_.size(), size_, out_.data());
    } catch (const std::exception& e) {
      SetError(std::string("jpegRoundTrip: ") + e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    deferred_.Resolve(Napi::Buffer<uint8_t>::Copy(env, out_.data(), out_.size()));
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<uint8_t> images_, qualities_;
  int size_;
  std::vector<uint8_t> out_;
};

Napi::Value JpegRoundTripJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto fail = [&](const std::string& m) {
    Napi::TypeError::New(env, "jpegRoundTrip: " + m).ThrowAsJavaScriptException();
    return env.Undefined();
  };
  auto is_u8 = [](const Napi::Value& v) {
    return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
  };
  if (info.Length() < 3 || !is_u8(info[0]) || !is_u8(info[1]) || !info[2].IsNumber())
    return fail("expected (images: Uint8Array, qualities: Uint8Array, size: number)");
  const double size_d = info[2].As<Napi::Number>().DoubleValue();
  if (!(size_d >= 8 && size_d <= 1024) || static_cast<double>(static_cast<int>(size_d)) != size_d)
    return fail("size must be an integer in [8, 1024]");
  auto images = info[0].As<Napi::Uint8Array>();
  auto qualities = info[1].As<Napi::Uint8Array>();
  const size_t per = 3 * static_cast<size_t>(size_d) * static_cast<size_t>(size_d);
  if (images.ByteLength() != qualities.ElementLength() * per)
    return fail("images has " + std::to_string(images.ByteLength()) + " bytes, expected qualities.length * 3 * size * size = " +
                std::to_string(qualities.ElementLength() * per));
  for (size_t i = 0; i < qualities.ElementLength(); ++i)
    if (qualities[i] > 100) return fail("qualities[" + std::to_string(i) + "] = " + std::to_string(qualities[i]) + " (allowed: 0 = unchanged, 1..100)");
  std::vector<uint8_t> im(images.Data(), images.Data() + images.ByteLength());
  std::vector<uint8_t> q(qualities.Data(), qualities.Data() + qualities.ElementLength());
  auto* worker = new JpegRoundTripWorker(env, std::move(im), std::move(q), static_cast<int>(size_d));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

#endif  // CIFAKE_WITH_JPEG

void RegisterJpeg(Napi::Env env, Napi::Object exports) {
#ifdef CIFAKE_WITH_JPEG
  exports.Set("decodeJpegBatch", Napi::Function::New(env, DecodeJpegBatchJs, "decodeJpegBatch"));
  exports.Set("jpegRoundTrip", Napi::Function::New(env, JpegRoundTripJs, "jpegRoundTrip"));
#else
  // Built without libjpeg: no decodeJpegBatch; the TypeScript side decodes JPEGs with sharp.
  (void)env;
  (void)exports;
#endif
}
