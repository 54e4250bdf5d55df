// The libjpeg error manager of the decoder (jpeg.cc) and the encoder (jpeg_encode.cc): a fatal
// libjpeg error formats its message and longjmps back to the setjmp of the call that started the
// work, instead of libjpeg's default exit(). Include after <jpeglib.h>.
#pragma once

#include <csetjmp>

namespace cifake {

struct JpegErrorManager {
  jpeg_error_mgr pub;  // must be first: libjpeg hands us a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] inline void JpegErrorExit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Points cinfo at `err` with the longjmp exit; returns what jpeg_std_error returns.
inline jpeg_error_mgr* InstallJpegErrors(JpegErrorManager* err) {
  jpeg_error_mgr* pub = jpeg_std_error(&err->pub);
  err->pub.error_exit = JpegErrorExit;
  err->message[0] = '\0';
  return pub;
}

}  // namespace cifake
