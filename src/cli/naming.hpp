// Output names for the command line: derived from the URL path only, sanitised so that a name
// is always one plain entry inside the output directory. Pure functions.
#pragma once

#include <string>
#include <string_view>

namespace uvget::cli {

/// The last segment of `path` (no query), percent-decoded and sanitised.
std::string name_from_path(std::string_view path);
/// Any text to a safe single file name: no '/', '\\', NUL or control bytes, no leading dot,
/// at most 200 bytes; "", "." and ".." become "index.html".
std::string sanitise_name(std::string_view decoded);
std::string percent_decode(std::string_view s);

}  // namespace uvget::cli
