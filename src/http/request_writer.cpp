// Serialises a request head; validation happens once, at Client::get().
#include "http/request_writer.hpp"

namespace uvget {

namespace {

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

const std::string* find_override(const HeaderList& list, std::string_view name) {
  const std::string* found = nullptr;
  for (auto& [n, v] : list)
    if (iequals(n, name)) found = &v;
  return found;
}

void put(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

Error validate_headers(const HeaderList& headers) {
  for (auto& [name, value] : headers) {
    if (name.empty()) return Error(Errc::bad_request, "empty header name");
    for (char c : name)
      if (!is_tchar(c)) return Error(Errc::bad_request, "invalid header name '" + name + "'");
    for (char c : value)
      if (c == '\r' || c == '\n' || c == '\0')
        return Error(Errc::bad_request, "header '" + name + "' has a CR, LF or NUL in its value");
  }
  return {};
}

void write_request(std::string& out, Method method, const Url& url, std::string_view user_agent,
                   const HeaderList& client_headers, const HeaderList& request_headers) {
  out.append(method == Method::head ? "HEAD " : "GET ");
  out.append(url.path);
  if (url.has_query) out.append("?").append(url.query);
  out.append(" HTTP/1.1\r\n");

  auto value_of = [&](std::string_view name, std::string_view fallback) -> std::string_view {
    if (auto* v = find_override(request_headers, name)) return *v;
    if (auto* v = find_override(client_headers, name)) return *v;
    return fallback;
  };
  std::string authority = url.authority();
  const std::string_view defaults[][2] = {
      {"Host", authority}, {"User-Agent", user_agent}, {"Accept", "*/*"}};
  for (auto& d : defaults) {
    std::string_view v = value_of(d[0], d[1]);
    if (!v.empty()) put(out, d[0], v);
  }
  auto is_default = [&](std::string_view n) {
    for (auto& d : defaults)
      if (iequals(n, d[0])) return true;
    return false;
  };
  // Client headers not replaced by the request, then request headers: the last of a name wins.
  for (auto& [n, v] : client_headers) {
    if (is_default(n) || find_override(request_headers, n)) continue;
    if (&v == find_override(client_headers, n) && !v.empty()) put(out, n, v);
  }
  for (auto& [n, v] : request_headers) {
    if (is_default(n)) continue;
    if (&v == find_override(request_headers, n) && !v.empty()) put(out, n, v);
  }
  out.append("\r\n");
}

}  // namespace uvget
