// Batch JPEG decoder, see jpeg.h. Built only when libjpeg is available (CIFAKE_WITH_JPEG).
#ifdef CIFAKE_WITH_JPEG

#include "jpeg.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

extern "C" {
#include <jpeglib.h>
}

#include "jpeg_errors.h"

namespace cifake {
namespace {

// Fatal errors and warnings both end the current image. Warnings (corrupt entropy data, premature
// end of file, ...) are fatal because sharp's default failOn: 'warning' rejects those files too.
void EmitMessage(j_common_ptr cinfo, int msg_level) {
  if (msg_level < 0) JpegErrorExit(cinfo);  // warning
  // msg_level >= 0: trace messages, ignored.
}

bool HasIccProfile(j_decompress_ptr cinfo) {
  static const char kIcc[] = "ICC_PROFILE";  // 11 chars + NUL
  for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 2 && m->data_length >= sizeof(kIcc) &&
        std::memcmp(m->data, kIcc, sizeof(kIcc)) == 0) {
      return true;
    }
  }
  return false;
}

// One libjpeg decompressor per image of a range. A reused one would keep the Huffman and
// quantisation tables of the previous image, so a JPEG that does not define a table it uses would
// decode with its neighbour's tables in a batch but fail alone (found by test/data-fuzz.test.ts);
// creating one costs microseconds next to a decode. Not copyable: cinfo holds a pointer to err.
class Decoder {
 public:
  Decoder() { Create(); }
  ~Decoder() {
    if (created_) jpeg_destroy_decompress(&cinfo_);
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  JpegResult Decode(const uint8_t* data, size_t length, int size, uint8_t* out) {
    if (used_) {
      if (created_) jpeg_destroy_decompress(&cinfo_);
      created_ = false;
      Create();
    }
    used_ = true;
    return DecodeFresh(data, length, size, out);
  }

 private:
  void Create() {
    std::memset(&cinfo_, 0, sizeof(cinfo_));
    cinfo_.err = InstallJpegErrors(&err_);
    err_.pub.emit_message = EmitMessage;
    if (setjmp(err_.jump) == 0) {
      jpeg_create_decompress(&cinfo_);
      // APP2 is where ICC profiles live; sharp colour-manages those, so we must detect them.
      jpeg_save_markers(&cinfo_, JPEG_APP0 + 2, 0xFFFF);
      created_ = true;
    }
  }

  JpegResult DecodeFresh(const uint8_t* data, size_t length, int size, uint8_t* out) {
    current_ = JpegResult();
    if (!created_) {
      current_.message = "could not create a libjpeg decompressor";
      return current_;
    }
    if (length == 0) {
      current_.message = "empty file";
      return current_;
    }
    if (size <= 0 || size > kMaxSize) {
      current_.message = "invalid output size";
      return current_;
    }
    // After a longjmp only members are read (no locals of this frame are modified after setjmp).
    if (setjmp(err_.jump) != 0) {
      jpeg_abort_decompress(&cinfo_);
      current_.status = kJpegCorrupt;
      current_.message = err_.message;
      return current_;
    }
    DecodeUnsafe(data, length, size, out);
    jpeg_abort_decompress(&cinfo_);
    return current_;
  }

  static constexpr int kMaxSize = 1024;

  // May longjmp back into Decode.
  void DecodeUnsafe(const uint8_t* data, size_t length, int size, uint8_t* out) {
    JpegResult* result = &current_;
    jpeg_mem_src(&cinfo_, data, static_cast<unsigned long>(length));
    jpeg_read_header(&cinfo_, TRUE);
    result->width = static_cast<int>(cinfo_.image_width);
    result->height = static_cast<int>(cinfo_.image_height);

    const J_COLOR_SPACE space = cinfo_.jpeg_color_space;
    const int components = cinfo_.num_components;
    bool gray = false;
    if (space == JCS_GRAYSCALE && components == 1) {
      gray = true;
    } else if ((space == JCS_YCbCr || space == JCS_RGB) && components == 3) {
      gray = false;
    } else {
      result->status = kJpegUnsupported;
      result->message = "unsupported colour space (" + std::to_string(components) + " components, libjpeg colour space " +
                        std::to_string(static_cast<int>(space)) + ")";
      return;
    }
    if (HasIccProfile(&cinfo_)) {
      result->status = kJpegUnsupported;
      result->message = "embedded ICC profile";
      return;
    }
    if (cinfo_.image_width != static_cast<JDIMENSION>(size) || cinfo_.image_height != static_cast<JDIMENSION>(size)) {
      result->status = kJpegWrongSize;
      result->message = "image is " + std::to_string(cinfo_.image_width) + "x" + std::to_string(cinfo_.image_height) +
                        ", expected " + std::to_string(size) + "x" + std::to_string(size);
      return;
    }

    // Same settings as libvips' JPEG loader (the libjpeg defaults, spelled out).
    cinfo_.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    cinfo_.dct_method = JDCT_ISLOW;
    cinfo_.do_fancy_upsampling = TRUE;
    cinfo_.do_block_smoothing = TRUE;
    cinfo_.scale_num = 1;
    cinfo_.scale_denom = 1;
    cinfo_.quantize_colors = FALSE;
    jpeg_start_decompress(&cinfo_);

    const int channels = cinfo_.output_components;  // 1 or 3
    const size_t plane = static_cast<size_t>(size) * static_cast<size_t>(size);
    const size_t row_bytes = static_cast<size_t>(size) * static_cast<size_t>(channels);
    uint8_t row[kMaxSize * 3];
    while (cinfo_.output_scanline < cinfo_.output_height) {
      const size_t y = cinfo_.output_scanline;
      JSAMPROW rows[1] = {row};
      if (jpeg_read_scanlines(&cinfo_, rows, 1) != 1) {
        // Only possible with a suspending data source; memory sources never suspend.
        result->status = kJpegCorrupt;
        result->message = "unexpected end of data";
        return;
      }
      uint8_t* r = out + y * static_cast<size_t>(size);
      if (gray) {
        std::memcpy(r, row, static_cast<size_t>(size));
        std::memcpy(r + plane, row, static_cast<size_t>(size));
        std::memcpy(r + 2 * plane, row, static_cast<size_t>(size));
      } else {
        uint8_t* g = r + plane;
        uint8_t* b = r + 2 * plane;
        for (size_t x = 0, i = 0; i < row_bytes; ++x, i += 3) {
          r[x] = row[i];
          g[x] = row[i + 1];
          b[x] = row[i + 2];
        }
      }
    }
    // Like libvips we do not call jpeg_finish_decompress(): it only checks the tail of the file,
    // and calling it would reject files that sharp accepts.
    result->status = kJpegOk;
    result->message.clear();
  }

  jpeg_decompress_struct cinfo_;
  JpegErrorManager err_;
  JpegResult current_;
  bool created_ = false;
  bool used_ = false;  // a decode ran on cinfo_: the next one gets a fresh decompressor
};

}  // namespace

JpegResult DecodeJpegCHW(const uint8_t* data, size_t length, int size, uint8_t* out) {
  Decoder decoder;
  return decoder.Decode(data, length, size, out);
}

void DecodeJpegRange(const uint8_t* blob, const uint32_t* offsets, size_t begin, size_t end, int size,
                     uint8_t* out, JpegResult* results) {
  Decoder decoder;
  const size_t image_bytes = 3 * static_cast<size_t>(size) * static_cast<size_t>(size);
  for (size_t i = begin; i < end; ++i) {
    const uint32_t start = offsets[i];
    const uint32_t stop = offsets[i + 1];
    uint8_t* dst = out + i * image_bytes;
    if (stop < start) {
      results[i] = JpegResult();
      results[i].message = "invalid offsets";
      continue;
    }
    results[i] = decoder.Decode(blob + start, stop - start, size, dst);
    if (results[i].status != kJpegOk) std::memset(dst, 0, image_bytes);
  }
}

std::vector<JpegResult> DecodeJpegBatch(const uint8_t* blob, const uint32_t* offsets, size_t count, int size,
                                        uint8_t* out) {
  std::vector<JpegResult> results(count);
  DecodeJpegRange(blob, offsets, 0, count, size, out, results.data());
  return results;
}

}  // namespace cifake

#endif  // CIFAKE_WITH_JPEG
