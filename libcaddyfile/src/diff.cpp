// Unified line diff: patience anchors, Myers' linear-space O(ND) search between them, and hunks
// printed the way GNU diff prints them.
#include "acmetool/caddyfile/diff.h"

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace acmetool::caddyfile {
namespace {

constexpr int kContext = 3;
// Beyond this many edits in one stretch the search stops and the stretch counts as replaced;
// keeps the worst case at O(N * kMaxCost) time.
constexpr int kMaxCost = 4096;

struct Lines {
  std::vector<std::string_view> text;  // without the '\n'
  std::vector<int> id;                 // equal lines of both texts share an id
  bool final_newline = true;           // whether the last line ends with '\n'
};

Lines split_lines(std::string_view s) {
  Lines lines;
  std::size_t begin = 0;
  while (begin < s.size()) {
    const std::size_t end = s.find('\n', begin);
    if (end == std::string_view::npos) {
      lines.text.push_back(s.substr(begin));
      lines.final_newline = false;
      break;
    }
    lines.text.push_back(s.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

// Lines a[i] and b[j] are matched; pairs are collected in increasing order of both.
using Matches = std::vector<std::pair<int, int>>;

class Differ {
 public:
  Differ(const std::vector<int>& a, const std::vector<int>& b, int id_count)
      : a_(a), b_(b), count_a_(static_cast<std::size_t>(id_count)),
        count_b_(static_cast<std::size_t>(id_count)), last_a_(static_cast<std::size_t>(id_count)),
        last_b_(static_cast<std::size_t>(id_count)) {}

  Matches run() {
    diff(0, static_cast<int>(a_.size()), 0, static_cast<int>(b_.size()), 0);
    return std::move(matches_);
  }

 private:
  void diff(int a_lo, int a_hi, int b_lo, int b_hi, int depth);
  void patience(int a_lo, int a_hi, int b_lo, int b_hi, int depth);
  bool anchor(int a_lo, int a_hi, int b_lo, int b_hi, int depth);
  void myers(int a_lo, int a_hi, int b_lo, int b_hi);
  bool middle_snake(int a_lo, int a_hi, int b_lo, int b_hi, int& x, int& y, int& u, int& v);

  const std::vector<int>& a_;
  const std::vector<int>& b_;
  // Scratch for patience(): occurrences of each id in the current stretch and where.
  std::vector<int> count_a_, count_b_, last_a_, last_b_;
  std::vector<int> forward_, backward_;  // Myers' V arrays
  Matches matches_;
};

// Patience anchoring recurses at most this deep (its stretches shrink each time, but the stack is
// finite); deeper stretches go straight to Myers, whose recursion halves the edits each level.
constexpr int kMaxDepth = 64;

void Differ::diff(int a_lo, int a_hi, int b_lo, int b_hi, int depth) {
  if (depth >= kMaxDepth) {
    myers(a_lo, a_hi, b_lo, b_hi);
  } else {
    patience(a_lo, a_hi, b_lo, b_hi, depth);
  }
}

// Strips the common ends, anchors the middle on unique lines, or failing that runs Myers on it.
void Differ::patience(int a_lo, int a_hi, int b_lo, int b_hi, int depth) {
  while (a_lo < a_hi && b_lo < b_hi && a_[a_lo] == b_[b_lo]) matches_.emplace_back(a_lo++, b_lo++);
  int suffix = 0;
  while (a_lo < a_hi - suffix && b_lo < b_hi - suffix &&
         a_[a_hi - suffix - 1] == b_[b_hi - suffix - 1]) {
    ++suffix;
  }
  a_hi -= suffix;
  b_hi -= suffix;
  if (a_lo < a_hi && b_lo < b_hi && !anchor(a_lo, a_hi, b_lo, b_hi, depth)) {
    myers(a_lo, a_hi, b_lo, b_hi);
  }
  for (int k = suffix; k > 0; --k) matches_.emplace_back(a_hi + suffix - k, b_hi + suffix - k);
}

// Anchors the stretch on lines that occur exactly once in each side (the longest increasing run
// of them, found by patience sorting), then diffs between anchors. False when there is none.
bool Differ::anchor(int a_lo, int a_hi, int b_lo, int b_hi, int depth) {
  for (int i = a_lo; i < a_hi; ++i) count_a_[a_[i]] = 0, count_b_[a_[i]] = 0;
  for (int j = b_lo; j < b_hi; ++j) count_a_[b_[j]] = 0, count_b_[b_[j]] = 0;
  for (int i = a_lo; i < a_hi; ++i) ++count_a_[a_[i]], last_a_[a_[i]] = i;
  for (int j = b_lo; j < b_hi; ++j) ++count_b_[b_[j]], last_b_[b_[j]] = j;
  // Unique pairs in order of b; patience sorting finds the longest run increasing in a.
  std::vector<std::pair<int, int>> unique;
  for (int j = b_lo; j < b_hi; ++j) {
    const int id = b_[j];
    if (count_a_[id] == 1 && count_b_[id] == 1) unique.emplace_back(last_a_[id], j);
  }
  if (unique.empty()) return false;
  std::vector<int> pile_tops;                   // index into unique of each pile's top
  std::vector<int> back(unique.size(), -1);     // predecessor in the run
  for (int k = 0; k < static_cast<int>(unique.size()); ++k) {
    const auto pile = std::lower_bound(pile_tops.begin(), pile_tops.end(), unique[k].first,
                                       [&](int top, int ai) { return unique[top].first < ai; });
    if (pile != pile_tops.begin()) back[k] = *(pile - 1);
    if (pile == pile_tops.end()) {
      pile_tops.push_back(k);
    } else {
      *pile = k;
    }
  }
  std::vector<std::pair<int, int>> anchors;
  for (int k = pile_tops.back(); k >= 0; k = back[k]) anchors.push_back(unique[k]);
  std::reverse(anchors.begin(), anchors.end());
  int a = a_lo;
  int b = b_lo;
  for (const auto& [ai, bj] : anchors) {
    diff(a, ai, b, bj, depth + 1);
    matches_.emplace_back(ai, bj);
    a = ai + 1;
    b = bj + 1;
  }
  diff(a, a_hi, b, b_hi, depth + 1);
  return true;
}

// Myers' linear-space refinement: split at the middle snake and recurse on both halves.
void Differ::myers(int a_lo, int a_hi, int b_lo, int b_hi) {
  while (a_lo < a_hi && b_lo < b_hi && a_[a_lo] == b_[b_lo]) matches_.emplace_back(a_lo++, b_lo++);
  int suffix = 0;
  while (a_lo < a_hi - suffix && b_lo < b_hi - suffix &&
         a_[a_hi - suffix - 1] == b_[b_hi - suffix - 1]) {
    ++suffix;
  }
  int x = 0, y = 0, u = 0, v = 0;
  // Without a snake (too costly) the stretch counts as replaced.
  if (a_lo < a_hi - suffix && b_lo < b_hi - suffix &&
      middle_snake(a_lo, a_hi - suffix, b_lo, b_hi - suffix, x, y, u, v)) {
    myers(a_lo, x, b_lo, y);
    for (int i = x, j = y; i < u; ++i, ++j) matches_.emplace_back(i, j);
    myers(u, a_hi - suffix, v, b_hi - suffix);
  }
  for (int k = suffix; k > 0; --k) matches_.emplace_back(a_hi - k, b_hi - k);
}

// Finds a snake (x,y)->(u,v) on an optimal path (Myers 1986, section 4b). False when the edit
// distance exceeds 2 * kMaxCost.
bool Differ::middle_snake(int a_lo, int a_hi, int b_lo, int b_hi, int& x, int& y, int& u,
                          int& v) {
  const int n = a_hi - a_lo;
  const int m = b_hi - b_lo;
  const int delta = n - m;
  const bool odd = (delta & 1) != 0;
  const int max_d = std::min((n + m + 1) / 2, kMaxCost);
  const int offset = max_d + 1;
  forward_.assign(static_cast<std::size_t>(2 * offset + 1), 0);
  backward_.assign(static_cast<std::size_t>(2 * offset + 1), 0);
  // forward_[k]: furthest x on diagonal k = x - y from the start; backward_[k]: furthest
  // distance walked back on diagonal k (measured as n - x) from the end.
  for (int d = 0; d <= max_d; ++d) {
    for (int k = -d; k <= d; k += 2) {
      int fx = (k == -d || (k != d && forward_[offset + k - 1] < forward_[offset + k + 1]))
                   ? forward_[offset + k + 1]
                   : forward_[offset + k - 1] + 1;
      int fy = fx - k;
      const int sx = fx;
      while (fx < n && fy < m && a_[a_lo + fx] == b_[b_lo + fy]) ++fx, ++fy;
      forward_[offset + k] = fx;
      const int kb = delta - k;  // the same diagonal seen from the end
      if (odd && kb >= -(d - 1) && kb <= d - 1 && fx + backward_[offset + kb] >= n) {
        x = a_lo + sx, y = b_lo + sx - k, u = a_lo + fx, v = b_lo + fy;
        return true;
      }
    }
    for (int k = -d; k <= d; k += 2) {
      int bx = (k == -d || (k != d && backward_[offset + k - 1] < backward_[offset + k + 1]))
                   ? backward_[offset + k + 1]
                   : backward_[offset + k - 1] + 1;
      int by = bx - k;
      const int sx = bx;
      while (bx < n && by < m && a_[a_hi - 1 - bx] == b_[b_hi - 1 - by]) ++bx, ++by;
      backward_[offset + k] = bx;
      const int kf = delta - k;
      if (!odd && kf >= -d && kf <= d && bx + forward_[offset + kf] >= n) {
        x = a_hi - bx, y = b_hi - by, u = a_hi - sx, v = b_hi - (sx - k);
        return true;
      }
    }
  }
  return false;
}

// One line of the edit script: kept, removed from `before` or added from `after`.
struct Edit {
  char op;  // ' ', '-', '+'
  int a;    // index in before (for ' ' and '-')
  int b;    // index in after (for ' ' and '+')
};

std::vector<Edit> edit_script(const Matches& matches, int n, int m) {
  std::vector<Edit> script;
  script.reserve(static_cast<std::size_t>(std::max(n, m)));
  int i = 0;
  int j = 0;
  auto advance_to = [&](int ai, int bj) {
    for (; i < ai; ++i) script.push_back({'-', i, j});
    for (; j < bj; ++j) script.push_back({'+', i, j});
  };
  for (const auto& [ai, bj] : matches) {
    advance_to(ai, bj);
    script.push_back({' ', i++, j++});
  }
  advance_to(n, m);
  return script;
}

// "l,n" as GNU diff writes a range: the count is left out when it is 1, and an empty range
// names the line before it.
std::string range(int first, int count) {
  if (count == 1) return std::to_string(first + 1);
  return std::to_string(count == 0 ? first : first + 1) + "," + std::to_string(count);
}

void append_line(std::string& out, char op, std::string_view text, bool missing_newline) {
  out += op;
  out += text;
  out += '\n';
  if (missing_newline) out += "\\ No newline at end of file\n";
}

}  // namespace

std::string unified_diff(std::string_view before, std::string_view after,
                         std::string_view before_name, std::string_view after_name) {
  if (before == after) return "";
  Lines a = split_lines(before);
  Lines b = split_lines(after);
  std::unordered_map<std::string_view, int> ids;
  ids.reserve(a.text.size() + b.text.size());
  for (Lines* lines : {&a, &b}) {
    lines->id.reserve(lines->text.size());
    for (std::string_view line : lines->text) {
      lines->id.push_back(ids.try_emplace(line, static_cast<int>(ids.size())).first->second);
    }
  }
  const int n = static_cast<int>(a.text.size());
  const int m = static_cast<int>(b.text.size());
  // A last line without '\n' equals only the other text's last line without '\n'.
  int id_count = static_cast<int>(ids.size());
  const int a_last = id_count++;
  if (!a.final_newline) a.id.back() = a_last;
  if (!b.final_newline) {
    const bool same = !a.final_newline && a.text.back() == b.text.back();
    b.id.back() = same ? a_last : id_count++;
  }
  const Matches matches = Differ(a.id, b.id, id_count).run();
  const std::vector<Edit> script = edit_script(matches, n, m);

  std::string out;
  out += "--- ";
  out += before_name;
  out += "\n+++ ";
  out += after_name;
  out += '\n';
  const int size = static_cast<int>(script.size());
  for (int start = 0; start < size;) {
    while (start < size && script[start].op == ' ') ++start;
    if (start == size) break;
    // Extend the hunk while the next change is within 2 * kContext kept lines.
    int end = start;
    for (int k = start; k < size; ++k) {
      if (script[k].op != ' ') {
        end = k + 1;
      } else if (k - end >= 2 * kContext) {
        break;
      }
    }
    const int first = std::max(0, start - kContext);
    const int last = std::min(size, end + kContext);
    int a_count = 0;
    int b_count = 0;
    for (int k = first; k < last; ++k) {
      if (script[k].op != '+') ++a_count;
      if (script[k].op != '-') ++b_count;
    }
    out += "@@ -" + range(script[first].a, a_count) + " +" + range(script[first].b, b_count) +
           " @@\n";
    for (int k = first; k < last; ++k) {
      const Edit& e = script[k];
      if (e.op == '+') {
        append_line(out, '+', b.text[e.b], e.b == m - 1 && !b.final_newline);
      } else {
        append_line(out, e.op, a.text[e.a],
                    e.a == n - 1 && !a.final_newline && (e.op == '-' || !b.final_newline));
      }
    }
    start = last;
  }
  return out;
}

}  // namespace acmetool::caddyfile
