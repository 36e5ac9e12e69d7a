// A line-based unified diff, as `diff -u` prints it, for `acmetool fmt --diff`.
#pragma once

#include <string>
#include <string_view>

namespace acmetool::caddyfile {

/// The unified diff that turns `before` into `after`: a "--- before_name" and a
/// "+++ after_name" line, then hunks "@@ -l,n +l,n @@" with 3 lines of context, in the same
/// form as GNU `diff -u` (a count of 1 is omitted, an empty range is "l,0" with l the line before
/// it, "\ No newline at end of file" after a last line without '\n'), so `patch` applies it.
/// Returns "" when the texts are equal.
///
/// Lines are compared byte for byte ('\n' ends a line; a CR is part of the line). Unique lines
/// anchor the texts as in patience diff and the stretches between anchors are diffed with Myers'
/// O(ND) algorithm in linear space, so a large file with few changes is fast; when a stretch has
/// more than a few thousand changes it is reported as replaced wholesale instead of searched for
/// a minimal script. Memory is linear in the input. Pure, thread-safe; throws only
/// std::bad_alloc.
std::string unified_diff(std::string_view before, std::string_view after,
                         std::string_view before_name, std::string_view after_name);

}  // namespace acmetool::caddyfile
