#include "acmetool/caddyfile/error.h"

namespace acmetool::caddyfile {

namespace {
std::string location(const std::string& file, int line, int column) {
  std::string where = file + ":" + std::to_string(line);
  if (column > 0) where += ":" + std::to_string(column);
  return where;
}
}  // namespace

ParseError::ParseError(std::string file, int line, int column, const std::string& message)
    : Error(location(file, line, column) + ": " + message),
      file_(std::move(file)),
      line_(line),
      column_(column) {}

}  // namespace acmetool::caddyfile
