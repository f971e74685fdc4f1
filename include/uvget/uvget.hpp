// The uvget library: include this one header.
#pragma once

#include <uvget/client.hpp>
#include <uvget/error.hpp>
#include <uvget/options.hpp>
#include <uvget/request.hpp>
#include <uvget/runner.hpp>
#include <uvget/url.hpp>
#include <uvget/version.hpp>
