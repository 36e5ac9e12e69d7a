// Errors thrown by libserve.
#pragma once

#include <stdexcept>

namespace acmetool::serve {

/// Root of every libserve error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace acmetool::serve
