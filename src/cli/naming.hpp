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

/// How a URL becomes a file name (--name-from).
enum class NameFrom {
  path,        // the last path segment: "/a/page.html?x=1" -> "page.html" (the default)
  path_query,  // with its query, as wget names it: "page.html?x=1"
  hash,        // a digest of the whole URL, keeping the segment's extension: "5f0c...e1.html"
};
/// The file name for a URL of this `path` and `query` (`has_query`: a '?' was there), whose
/// whole text is `url`; always one plain entry, as sanitise_name makes it.
std::string name_for(std::string_view path, std::string_view query, bool has_query,
                     std::string_view url, NameFrom how);

/// The file name a Content-Disposition header gives (RFC 6266): filename* (RFC 8187,
/// UTF-8 or ISO-8859-1, percent-encoded) before filename; only its last component (after any
/// '/' or '\\'), sanitised as any name. "" when it gives none that can be used.
std::string content_disposition_name(std::string_view header);

/// -x: the directories a URL's file goes in, under the output directory: the host (with
/// ":port" when not the scheme's default; left out with `no_host`), then the path's segments
/// but the last, less the first `cut_dirs`. Each is percent-decoded and sanitised like a name;
/// empty and "." segments are dropped, so none can be "..", hold a '/', or climb out. "" when
/// none is left.
std::string layout_dirs(std::string_view host_port, std::string_view path, bool no_host,
                        int cut_dirs);

}  // namespace uvget::cli
