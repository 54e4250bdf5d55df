// JPEG re-encoding, see jpeg_encode.h. Built only when libjpeg is available (CIFAKE_WITH_JPEG).
#ifdef CIFAKE_WITH_JPEG

#include "jpeg_encode.h"

#include "jpeg.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

extern "C" {
#include <jpeglib.h>
}

#include "jpeg_errors.h"

namespace cifake {

bool EncodeJpegCHW(const uint8_t* chw, int size, int quality, std::vector<uint8_t>* out, std::string* error) {
  jpeg_compress_struct cinfo;
  JpegErrorManager err;
  std::memset(&cinfo, 0, sizeof(cinfo));
  cinfo.err = InstallJpegErrors(&err);
  unsigned char* mem = nullptr;
  unsigned long mem_size = 0;
  std::vector<uint8_t> row(static_cast<size_t>(size) * 3);
  const size_t plane = static_cast<size_t>(size) * size;
  if (setjmp(err.jump) != 0) {
    jpeg_destroy_compress(&cinfo);
    std::free(mem);
    *error = err.message;
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &mem, &mem_size);
  cinfo.image_width = static_cast<JDIMENSION>(size);
  cinfo.image_height = static_cast<JDIMENSION>(size);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    const size_t y = cinfo.next_scanline;
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c) row[static_cast<size_t>(x) * 3 + c] = chw[c * plane + y * size + x];
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  out->assign(mem, mem + mem_size);
  jpeg_destroy_compress(&cinfo);
  std::free(mem);
  return true;
}

void JpegRoundTripRange(const uint8_t* images, const uint8_t* qualities, size_t begin, size_t end, int size,
                        uint8_t* out) {
  const size_t bytes = 3 * static_cast<size_t>(size) * size;
  std::vector<uint8_t> encoded;
  std::string error;
  for (size_t i = begin; i < end; ++i) {
    const uint8_t* src = images + i * bytes;
    uint8_t* dst = out + i * bytes;
    if (qualities[i] == 0) {
      if (dst != src) std::memcpy(dst, src, bytes);
      continue;
    }
    if (!EncodeJpegCHW(src, size, qualities[i], &encoded, &error))
      throw std::runtime_error("jpeg re-encoding of image " + std::to_string(i) + " failed: " + error);
    JpegResult r = DecodeJpegCHW(encoded.data(), encoded.size(), size, dst);
    if (r.status != kJpegOk)
      throw std::runtime_error("jpeg re-encoding of image " + std::to_string(i) + ": decoding failed: " + r.message);
  }
}

}  // namespace cifake

#endif  // CIFAKE_WITH_JPEG
