#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

#include "client_internal.h"

namespace acmetool::acme {

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    if (value.size() > 9) return std::chrono::seconds(999'999'999);
    return std::chrono::seconds(std::stol(std::string(value)));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  struct tm parts {};
  const std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  if (!end || *end != '\0') return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(timegm(&parts));
  if (at <= now) return std::chrono::seconds(0);
  return std::chrono::ceil<std::chrono::seconds>(at - now);
}

std::chrono::milliseconds next_poll_delay(std::optional<std::chrono::seconds> retry_after,
                                          std::chrono::milliseconds backoff) {
  using std::chrono::milliseconds;
  if (!retry_after) return backoff;
  return std::clamp<milliseconds>(*retry_after, milliseconds(100), milliseconds(60'000));
}

std::vector<std::pair<std::string, std::string>> parse_links(const std::vector<std::string>& values) {
  std::vector<std::pair<std::string, std::string>> links;
  for (const std::string& value : values) {
    size_t pos = 0;
    while ((pos = value.find('<', pos)) != std::string::npos) {
      const size_t close = value.find('>', pos);
      if (close == std::string::npos) break;
      std::string target = value.substr(pos + 1, close - pos - 1);
      // Parameters run to the next comma that starts another link.
      const size_t next = value.find('<', close);
      const std::string params = value.substr(close + 1, next == std::string::npos ? std::string::npos : next - close - 1);
      std::string rel;
      if (const size_t r = params.find("rel="); r != std::string::npos) {
        size_t start = r + 4;
        const bool quoted = start < params.size() && params[start] == '"';
        if (quoted) ++start;
        const size_t stop = params.find_first_of(quoted ? "\"" : ";, ", start);
        rel = params.substr(start, stop == std::string::npos ? std::string::npos : stop - start);
      }
      links.emplace_back(std::move(target), std::move(rel));
      pos = close + 1;
    }
  }
  return links;
}

std::string problem_type(std::string_view short_name) {
  return "urn:ietf:params:acme:error:" + std::string(short_name);
}

ProblemError problem_from(const HttpResponse& response) {
  const auto retry_after = response.header("retry-after")
                               ? parse_retry_after(*response.header("retry-after"), std::chrono::system_clock::now())
                               : std::nullopt;
  const auto doc = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("type")) {
    return ProblemError("about:blank", "HTTP " + std::to_string(response.status), static_cast<int>(response.status),
                        {}, retry_after);
  }
  std::vector<ProblemError::Subproblem> subproblems;
  if (auto subs = doc.find("subproblems"); subs != doc.end() && subs->is_array()) {
    for (const auto& sub : *subs) {
      if (!sub.is_object()) continue;
      std::string identifier;
      if (auto id = sub.find("identifier"); id != sub.end() && id->is_object()) identifier = id->value("value", "");
      subproblems.push_back({sub.value("type", ""), sub.value("detail", ""), identifier});
    }
  }
  return ProblemError(doc.value("type", ""), doc.value("detail", ""), static_cast<int>(response.status),
                      std::move(subproblems), retry_after);
}

}  // namespace acmetool::acme
