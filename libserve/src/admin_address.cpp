// Admin listen addresses as Caddy writes them ("[network/]host:port", "unix/path|mode"). Pure:
// no lookups, no sockets.
#include <algorithm>
#include <cctype>
#include <string>

#include <boost/asio/ip/address.hpp>

#include "acmetool/serve/admin.h"
#include "acmetool/serve/error.h"
#include "admin_internal.h"

namespace acmetool::serve {

std::string join_host_port(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

namespace asio = boost::asio;

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

using Network = AdminAddress::Network;

Network parse_network(std::string_view name, const std::string& context) {
  const std::string network = lower(name);
  if (network == "tcp") return Network::Tcp;
  if (network == "tcp4") return Network::Tcp4;
  if (network == "tcp6") return Network::Tcp6;
  if (network == "unix") return Network::Unix;
  throw Error(context + "unknown network \"" + network + "\" (tcp, tcp4, tcp6 or unix)");
}

// "/run/admin.sock" or "/run/admin.sock|0660".
void parse_unix(std::string_view text, AdminAddress& address, const std::string& context) {
  if (const std::size_t bar = text.rfind('|'); bar != std::string_view::npos) {
    const std::string_view mode = text.substr(bar + 1);
    const bool octal =
        !mode.empty() && mode.size() <= 4 &&
        std::all_of(mode.begin(), mode.end(), [](char c) { return c >= '0' && c <= '7'; });
    if (!octal) {
      throw Error(context + "bad socket mode \"" + std::string(mode) + "\" (octal, like 0660)");
    }
    address.mode = static_cast<std::filesystem::perms>(std::stoi(std::string(mode), nullptr, 8));
    text = text.substr(0, bar);
  }
  if (text.empty()) {
    throw Error(context + "no socket path (for example unix//run/acmetool-admin.sock)");
  }
  address.path = std::string(text);
}

std::uint16_t parse_port(std::string_view text, const std::string& context) {
  if (text.find('-') != std::string_view::npos) {
    throw Error(context + "a port range is not allowed: the admin endpoint listens on one port");
  }
  const bool digits =
      !text.empty() && text.size() <= 5 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoi(std::string(text)) > 65535) {
    throw Error(context + "bad port \"" + std::string(text) + "\" (0 to 65535)");
  }
  return static_cast<std::uint16_t>(std::stoi(std::string(text)));
}

// The host part: "", "localhost" or an IP literal of the network's family.
std::string parse_host(std::string_view text, bool bracketed, Network network,
                       const std::string& context) {
  const std::string host = lower(text);
  if (host.empty() || host == "localhost") {
    if (bracketed) throw Error(context + "brackets are for IPv6 addresses");
    return host;
  }
  boost::system::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) throw Error(context + "host \"" + host + "\" is neither an IP address nor localhost");
  if (ip.is_v6() && !bracketed) {
    throw Error(context + "an IPv6 address needs brackets, as in [::1]:2019");
  }
  if (ip.is_v4() && bracketed) throw Error(context + "brackets are for IPv6 addresses");
  if ((network == Network::Tcp4 && ip.is_v6()) || (network == Network::Tcp6 && ip.is_v4())) {
    throw Error(context + "the address is of the other IP family than the network");
  }
  return ip.to_string();
}

// "host:port", "[v6]:port", ":port".
void parse_host_port(std::string_view text, AdminAddress& address, const std::string& context) {
  std::string_view host = text, port;
  bool bracketed = false;
  if (text.starts_with('[')) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) throw Error(context + "missing ]");
    host = text.substr(1, close - 1);
    bracketed = true;
    if (close + 1 == text.size()) throw Error(context + "missing port, as in [::1]:2019");
    if (text[close + 1] != ':') throw Error(context + "expected : after ]");
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      throw Error(context + "missing port, as in localhost:2019");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      throw Error(context + "an IPv6 address needs brackets, as in [::1]:2019");
    }
  }
  address.port = parse_port(port, context);
  address.host = parse_host(host, bracketed, address.network, context);
}

}  // namespace

AdminAddress parse_admin_address(std::string_view text) {
  const std::string context = "admin address \"" + std::string(text) + "\": ";
  if (text.empty()) throw Error("admin address: empty (for example localhost:2019)");
  AdminAddress address;
  std::string_view rest = text;
  if (const std::size_t slash = text.find('/'); slash != std::string_view::npos) {
    address.network = parse_network(text.substr(0, slash), context);
    rest = text.substr(slash + 1);
  }
  if (address.network == Network::Unix) {
    parse_unix(rest, address, context);
  } else {
    parse_host_port(rest, address, context);
  }
  return address;
}

bool AdminAddress::is_local() const {
  if (network == Network::Unix || host == "localhost") return true;
  boost::system::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  return !ec && ip.is_loopback();
}

bool AdminAddress::is_wildcard() const {
  return network != Network::Unix && (host.empty() || host == "0.0.0.0" || host == "::");
}

std::string AdminAddress::to_string() const {
  switch (network) {
    case Network::Unix:
      return "unix/" + path.string();
    case Network::Tcp4:
      return "tcp4/" + join_host_port(host, port);
    case Network::Tcp6:
      return "tcp6/" + join_host_port(host, port);
    case Network::Tcp:
      break;
  }
  return join_host_port(host, port);
}

}  // namespace acmetool::serve
