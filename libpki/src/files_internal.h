// Helpers of files.cpp that other libpki files share.
#pragma once

#include <string>

namespace acmetool::pki {

/// 16 random hex digits, to make temp file names unique (not a secret).
std::string random_suffix();

}  // namespace acmetool::pki
