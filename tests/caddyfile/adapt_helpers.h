// Helpers for the adapter tests: Caddyfile text in, Config (or the one-line error) out, through
// the real parser.
#pragma once

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "acmetool/caddyfile/adapt.h"
#include "acmetool/caddyfile/error.h"
#include "acmetool/caddyfile/parse.h"

namespace acmetool::caddyfile::test {

/// Parses `text` as "Caddyfile" with only `env` as the environment, then adapts it.
inline Config adapt_text(std::string_view text, std::vector<Warning>* warnings = nullptr,
                         const std::map<std::string, std::string>& env = {}) {
  ParseOptions options;
  options.env = [env](std::string_view name) -> std::optional<std::string> {
    const auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  const ParseResult parsed = parse(text, "Caddyfile", options);
  std::vector<Warning> local;
  std::vector<Warning>& out = warnings ? *warnings : local;
  out.insert(out.end(), parsed.warnings.begin(), parsed.warnings.end());
  return adapt(parsed, out);
}

/// The what() of the ParseError adapting `text` throws; fails the test when nothing is thrown.
inline std::string adapt_error(std::string_view text) {
  try {
    adapt_text(text);
  } catch (const ParseError& e) {
    return e.what();
  }
  FAIL("no error for:\n" << text);
  return "";
}

/// The only site's routes.
inline const std::vector<Route>& routes_of(const Config& config) {
  REQUIRE(config.sites.size() == 1);
  return config.sites[0].routes;
}

/// The handler of a route as T; fails the test when it holds another type.
template <class T>
const T& handler_as(const Route& route) {
  if constexpr (std::is_same_v<T, ReverseProxyHandler>) {
    const auto* boxed = std::get_if<Boxed<ReverseProxyHandler>>(&route.handler);
    REQUIRE(boxed != nullptr);
    return **boxed;
  } else {
    const T* handler = std::get_if<T>(&route.handler);
    REQUIRE(handler != nullptr);
    return *handler;
  }
}

}  // namespace acmetool::caddyfile::test
