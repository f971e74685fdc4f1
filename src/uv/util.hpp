// Small libuv helpers shared by every layer: status codes to words, clocks.
#pragma once

#include <uv.h>

#include <string>

namespace uvget {

/// "connection refused (ECONNREFUSED)": a libuv status in words.
inline std::string uv_words(int rc) {
  return std::string(uv_strerror(rc)) + " (" + uv_err_name(rc) + ")";
}

template <class T>
uv_handle_t* as_handle(T* h) noexcept {
  return reinterpret_cast<uv_handle_t*>(h);
}
template <class T>
uv_stream_t* as_stream(T* h) noexcept {
  return reinterpret_cast<uv_stream_t*>(h);
}

}  // namespace uvget
