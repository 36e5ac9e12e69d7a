// The one list of acmetool's exit codes (DESIGN.md §3). Every man page's EXIT STATUS section repeats
// the subset its command uses; tests assert them.
#pragma once

namespace acmetool::cmd {

inline constexpr int kExitOk = 0;            ///< success, including "still valid, nothing to do"
inline constexpr int kExitFailed = 1;        ///< the operation failed (or is not implemented yet)
inline constexpr int kExitUsage = 2;         ///< bad flags, arguments or configuration
inline constexpr int kExitPartial = 3;       ///< some items failed, others succeeded

}  // namespace acmetool::cmd
