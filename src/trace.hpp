// Debug tracing to stderr, on when UVGET_TRACE is set in the environment. Off: one branch.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace uvget {

inline bool trace_enabled() noexcept {
  static const bool on = std::getenv("UVGET_TRACE") != nullptr;
  return on;
}

}  // namespace uvget

#define UVGET_TRACE(...)                           \
  do {                                             \
    if (::uvget::trace_enabled()) {                \
      std::fprintf(stderr, "uvget: " __VA_ARGS__); \
      std::fputc('\n', stderr);                    \
    }                                              \
  } while (0)
