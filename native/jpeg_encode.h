// JPEG re-encoding of planar images for robustness evaluation and training (libjpeg; no N-API,
// no torch): each image is encoded at its own quality (libjpeg defaults: 4:2:0 chroma, baseline,
// JDCT_ISLOW, as sharp's and Pillow's defaults) and decoded back with the data pipeline's decoder
// (jpeg.h), so a re-saved image is what the pipeline would have read from a re-saved file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cifake {

// Encodes one size x size planar RGB image (3 * size * size bytes, planes R, G, B) at quality
// 1..100 into *out. Returns false with *error set when libjpeg fails.
bool EncodeJpegCHW(const uint8_t* chw, int size, int quality, std::vector<uint8_t>* out, std::string* error);

// Re-encodes images [begin, end): image i = images + i * 3 * size * size at qualities[i] (0 = leave
// the image as it is) into out (same layout). Throws std::runtime_error naming the image on failure.
// Thread-safe for disjoint ranges.
void JpegRoundTripRange(const uint8_t* images, const uint8_t* qualities, size_t begin, size_t end, int size,
                        uint8_t* out);

}  // namespace cifake
