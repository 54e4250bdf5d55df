// Batch JPEG decoder for the data pipeline (libjpeg / libjpeg-turbo; no N-API, no torch).
//
// Decodes JPEG blobs of a fixed size (CIFAKE: 32x32) into planar CHW uint8 RGB, with the same
// settings as sharp/libvips so that the pixels are identical: JDCT_ISLOW, fancy upsampling, block
// smoothing on, and every libjpeg warning (e.g. "Premature end of JPEG file") treated as an error
// like sharp's default failOn: 'warning'. Images that sharp would colour-manage differently (CMYK,
// YCCK, an embedded ICC profile) are reported as kJpegUnsupported so the caller can hand them to
// sharp. A corrupt image never aborts: libjpeg errors are caught with setjmp/longjmp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cifake {

enum JpegStatus : int32_t {
  kJpegOk = 0,           // decoded into the output slot
  kJpegCorrupt = 1,      // libjpeg error or warning; message holds libjpeg's text
  kJpegWrongSize = 2,    // decodable header but not size x size; width/height are set
  kJpegUnsupported = 3,  // CMYK/YCCK, unusual component count or embedded ICC profile: use sharp
};

struct JpegResult {
  int32_t status = kJpegCorrupt;
  int width = 0;   // from the header when it could be read, else 0
  int height = 0;
  std::string message;  // empty when status == kJpegOk
};

// Decodes one JPEG of exactly size x size into out (3 * size * size bytes, planes R, G, B).
// Grayscale JPEGs are expanded to three identical planes. On failure out may hold partial data.
JpegResult DecodeJpegCHW(const uint8_t* data, size_t length, int size, uint8_t* out);

// Decodes images [begin, end) of a batch: image i is blob[offsets[i], offsets[i + 1]) and goes to
// out + i * 3 * size * size. results must have at least `end` elements. One libjpeg decompressor
// is reused for the whole range. Thread-safe for disjoint ranges.
void DecodeJpegRange(const uint8_t* blob, const uint32_t* offsets, size_t begin, size_t end, int size,
                     uint8_t* out, JpegResult* results);

// Convenience: decodes a whole batch of `count` images (offsets has count + 1 entries).
std::vector<JpegResult> DecodeJpegBatch(const uint8_t* blob, const uint32_t* offsets, size_t count, int size,
                                        uint8_t* out);

}  // namespace cifake
