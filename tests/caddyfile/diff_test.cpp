// The unified diff behind `acmetool fmt --diff`: exact output for the shapes GNU diff prints
// specially, GNU diff itself as the reference, and `patch` applying what we print.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "acmetool/caddyfile/diff.h"
#include "fixture_util.h"
#include "process.h"

namespace {

using acmetool::caddyfile::unified_diff;
using acmetool::test::read_text;
using acmetool::test::run_command;
using acmetool::test::TempDir;
using acmetool::test::write_file;

// What `diff -u` prints for the same texts, with the same names.
std::string gnu_diff(const std::string& before, const std::string& after) {
  const TempDir dir("acmetool-diff");
  write_file(dir.path() / "before", before);
  write_file(dir.path() / "after", after);
  const auto r = run_command({"diff", "-u", "--label", "before", "--label", "after",
                              (dir.path() / "before").string(), (dir.path() / "after").string()});
  REQUIRE(r.exit_code <= 1);
  return r.out;
}

// `before` with our diff applied by patch(1).
std::string patched(const std::string& before, const std::string& diff) {
  const TempDir dir("acmetool-patch");
  write_file(dir.path() / "before", before);
  const auto out = dir.path() / "out";
  const auto r = run_command({"patch", "-s", "-o", out.string(), (dir.path() / "before").string()}, diff);
  INFO(r.err << r.out);
  REQUIRE(r.exit_code == 0);
  return read_text(out);
}

std::string numbered_lines(int count, const std::string& prefix) {
  std::string text;
  for (int i = 1; i <= count; ++i) text += prefix + std::to_string(i) + "\n";
  return text;
}

}  // namespace

TEST_CASE("unified_diff is empty for equal texts", "[diff]") {
  CHECK(unified_diff("", "", "a", "b").empty());
  CHECK(unified_diff("x\ny\n", "x\ny\n", "a", "b").empty());
}

TEST_CASE("unified_diff prints headers, hunk ranges and 3 lines of context like diff -u", "[diff]") {
  const std::string before = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
  const std::string after = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
  CHECK(unified_diff(before, after, "Caddyfile", "Caddyfile") ==
        "--- Caddyfile\n+++ Caddyfile\n"
        "@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
}

TEST_CASE("unified_diff leaves out a count of one and names the line before an empty range",
          "[diff]") {
  CHECK(unified_diff("a\n", "b\n", "x", "y") == "--- x\n+++ y\n@@ -1 +1 @@\n-a\n+b\n");
  CHECK(unified_diff("", "a\n", "x", "y") == "--- x\n+++ y\n@@ -0,0 +1 @@\n+a\n");
  CHECK(unified_diff("a\nb\n", "a\n", "x", "y") == "--- x\n+++ y\n@@ -1,2 +1 @@\n a\n-b\n");
}

TEST_CASE("unified_diff marks a last line without a newline", "[diff]") {
  CHECK(unified_diff("a\nb", "a\nb\n", "x", "y") ==
        "--- x\n+++ y\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n");
  CHECK(unified_diff("a\n", "a\nb", "x", "y") ==
        "--- x\n+++ y\n@@ -1 +1,2 @@\n a\n+b\n\\ No newline at end of file\n");
}

TEST_CASE("unified_diff matches GNU diff on formatter-shaped changes", "[diff]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a {\n  b\n}\n", "a {\n\tb\n}\n"},
      {"example.com\n{\n\trespond hi\n}\n", "example.com {\n\trespond hi\n}\n"},
      {"a\n\n\n\nb\n", "a\n\nb\n"},
      {numbered_lines(30, "l"), [] {
         std::string t = numbered_lines(30, "l");
         t.replace(t.find("l3\n"), 3, "L3\n");
         t.replace(t.find("l20\n"), 4, "L20\n");
         return t;
       }()},
      {numbered_lines(12, "l"), [] {  // two changes 6 lines apart share one hunk
         std::string t = numbered_lines(12, "l");
         t.replace(t.find("l2\n"), 3, "x\n");
         t.replace(t.find("l9\n"), 3, "y\n");
         return t;
       }()},
      {numbered_lines(14, "l"), [] {  // 7 lines apart: two hunks
         std::string t = numbered_lines(14, "l");
         t.replace(t.find("l2\n"), 3, "x\n");
         t.replace(t.find("l10\n"), 4, "y\n");
         return t;
       }()},
  };
  for (const auto& [before, after] : cases) {
    INFO(before);
    CHECK(unified_diff(before, after, "before", "after") == gnu_diff(before, after));
  }
}

TEST_CASE("patch applies unified_diff output to random edits", "[diff]") {
  std::mt19937 rng(7);
  const std::vector<std::string> lines = {"a", "b", "c", "{", "}", "", "\trespond hi", "x y"};
  std::uniform_int_distribution<std::size_t> pick(0, lines.size() - 1);
  std::uniform_int_distribution<int> length(0, 30);
  for (int i = 0; i < 60; ++i) {
    std::string before, after;
    for (int n = length(rng); n > 0; --n) before += lines[pick(rng)] + "\n";
    for (int n = length(rng); n > 0; --n) after += lines[pick(rng)] + "\n";
    if (i % 5 == 0 && !after.empty()) after.pop_back();  // no final newline
    const std::string diff = unified_diff(before, after, "before", "after");
    INFO(before << "----\n" << after << "----\n" << diff);
    if (before == after) {
      CHECK(diff.empty());
    } else {
      CHECK(patched(before, diff) == after);
    }
  }
}

TEST_CASE("unified_diff stays fast on a large file with few changes and on a full rewrite",
          "[diff]") {
  const std::string before = numbered_lines(60000, "site");
  std::string few = before;
  few.replace(few.find("site100\n"), 8, "changed\n");
  few.replace(few.find("site50000\n"), 10, "changed\n");
  const auto start = std::chrono::steady_clock::now();
  const std::string diff = unified_diff(before, few, "before", "after");
  CHECK(patched(before, diff) == few);
  // Every line different: the search gives up early and reports a wholesale replacement.
  const std::string rewrite = numbered_lines(60000, "other");
  const std::string full = unified_diff(before, rewrite, "before", "after");
  CHECK(full.size() > before.size() + rewrite.size());
  CHECK(patched(before, full) == rewrite);
  // Not a timing assertion on speed, only a guard against quadratic behaviour (minutes).
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
}
