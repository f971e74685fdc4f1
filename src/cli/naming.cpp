// Output name derivation and sanitising.
#include "cli/naming.hpp"

namespace uvget::cli {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::size_t kMaxName = 200;  // leaves room for ".part" and a ".NNN" suffix

}  // namespace

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string sanitise_name(std::string_view decoded) {
  std::string out;
  out.reserve(decoded.size());
  for (char c : decoded) {
    auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == '\\' || u < 0x20 || u == 0x7f)
      out.push_back('_');
    else
      out.push_back(c);
  }
  if (out.empty() || out == "." || out == "..") return "index.html";
  std::size_t dots = 0;
  while (dots < out.size() && out[dots] == '.') ++dots;
  if (dots > 0) out.replace(0, dots, std::string(dots, '_'));
  if (out.size() > kMaxName) {
    // Keep a short extension: "very-long....tar.gz" stays recognisable.
    std::size_t dot = out.rfind('.');
    std::string ext = (dot != std::string::npos && out.size() - dot <= 16) ? out.substr(dot) : "";
    std::size_t keep = kMaxName - ext.size();
    // Do not cut a UTF-8 sequence in half (unless the text is no UTF-8 at all).
    std::size_t at = keep;
    while (at > 0 && (static_cast<unsigned char>(out[at]) & 0xC0) == 0x80) --at;
    out = out.substr(0, at > 0 ? at : keep) + ext;
  }
  return out.empty() ? "index.html" : out;
}

std::string name_from_path(std::string_view path) {
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  std::size_t slash = path.rfind('/');
  std::string_view last = slash == std::string_view::npos ? path : path.substr(slash + 1);
  return sanitise_name(percent_decode(last));
}

}  // namespace uvget::cli
