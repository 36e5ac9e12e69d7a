// Runs the acmetool binary under test (ACMETOOL_BINARY, set by tests/CMakeLists.txt).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "process.h"

namespace acmetool::test {

/// `acmetool ARGS...` to completion, with `env` added to the environment.
inline CommandResult run_acmetool(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
  args.insert(args.begin(), ACMETOOL_BINARY);
  return run_command(args, "", env);
}

}  // namespace acmetool::test
