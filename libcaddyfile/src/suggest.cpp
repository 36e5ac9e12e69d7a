// "Did you mean" suggestions for misspelt directives, options and subdirectives (ninja's
// SpellcheckString: the closest candidate within a small edit distance).
#include <algorithm>
#include <vector>

#include "adapt_internal.h"

namespace acmetool::caddyfile::detail {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Damerau-Levenshtein (optimal string alignment): a swapped pair of letters costs one edit,
  // so "reverse_porxy" is as close as "reverse_prxy".
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::size_t> two_back(m + 1), previous(m + 1), current(m + 1);
  for (std::size_t j = 0; j <= m; ++j) previous[j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], two_back[j - 2] + 1);
      }
    }
    std::swap(two_back, previous);
    std::swap(previous, current);
  }
  return previous[m];
}

std::optional<std::string_view> closest_match(std::string_view word, std::span<const std::string_view> candidates) {
  // Allow one edit for short words and about a third of the length for longer ones, so "tsl"
  // suggests "tls" but "log" does not suggest "tls".
  const std::size_t allowed = std::max<std::size_t>(1, word.size() / 3);
  std::optional<std::string_view> best;
  std::size_t best_distance = allowed + 1;
  for (const std::string_view candidate : candidates) {
    const std::size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates) {
  const auto best = closest_match(word, candidates);
  if (!best) return "";
  return " (did you mean '" + std::string(*best) + "'?)";
}

}  // namespace acmetool::caddyfile::detail
