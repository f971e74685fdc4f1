// The file sinks' pool of body buffers, one per thread (see body_buffers in sinks.cpp): what a
// streamed body's sink leaves for the next one on the same loop.
#pragma once

#include <cstddef>

namespace uvget {

/// Bytes the calling thread's pool keeps for the next streamed body.
std::size_t pooled_body_bytes();
/// Frees them. A client calls it on its loop's thread once it has closed, so a host that
/// downloaded once keeps no buffers for the rest of its life.
void release_body_buffers();

}  // namespace uvget
