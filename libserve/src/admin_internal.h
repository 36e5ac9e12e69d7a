// Private helpers of the admin endpoint, shared by admin_address.cpp and admin.cpp.
#pragma once

#include <string>

namespace acmetool::serve {

/// "[host]:port" for an IPv6 literal, else "host:port".
std::string join_host_port(const std::string& host, int port);

}  // namespace acmetool::serve
