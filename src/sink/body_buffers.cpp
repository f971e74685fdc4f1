#include "sink/body_buffers.hpp"

#include <algorithm>

namespace uvget {
namespace body_buffers {
namespace {
thread_local bool pool_gone = false;  // the thread is exiting: its pool was destroyed
thread_local Pool pool;
}  // namespace

Pool::~Pool() {
  pool_gone = true;
}

Pool* here() {
  return pool_gone ? nullptr : &pool;
}

void grow(std::string& s, std::size_t adding, std::size_t limit) {
  std::size_t need = s.size() + adding;
  if (need <= std::max(s.capacity(), kSmallFile)) return;
  std::size_t want = std::max(need, limit + limit / 4);
  if (pool_gone) return s.reserve(want);
  for (std::size_t i = pool.free.size(); i-- > 0;) {
    if (pool.free[i].capacity() < want) continue;
    std::string b = std::move(pool.free[i]);
    pool.free.erase(pool.free.begin() + static_cast<std::ptrdiff_t>(i));
    pool.bytes -= b.capacity();
    b.assign(s);
    s.swap(b);
    return;
  }
  s.reserve(want);
}

void give(std::string& s) {
  if (pool_gone || s.capacity() <= kSmallFile || pool.bytes + s.capacity() > kPoolBytes) return;
  s.clear();
  pool.bytes += s.capacity();
  pool.free.push_back(std::move(s));
  s = std::string();
}

std::size_t hold_limit(std::size_t high_water) {
  Pool* p = here();
  std::size_t holders = std::max<std::size_t>(1, p ? p->holders : 1);
  std::size_t floor = std::min(high_water, kMinHold);
  return std::max(floor, std::min(high_water, kBudget / holders));
}

std::size_t resume_below(std::size_t high_water, std::size_t low_water) {
  return std::min(low_water, std::max<std::size_t>(1, hold_limit(high_water) / 2));
}

}  // namespace body_buffers

std::size_t pooled_body_bytes() {
  return body_buffers::here() ? body_buffers::here()->bytes : 0;
}

void release_body_buffers() {
  if (body_buffers::Pool* p = body_buffers::here()) {
    std::vector<std::string>().swap(p->free);
    p->bytes = 0;
  }
}

}  // namespace uvget
