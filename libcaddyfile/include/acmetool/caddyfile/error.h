// Errors thrown by libcaddyfile.
#pragma once

#include <stdexcept>
#include <string>

namespace acmetool::caddyfile {

/// Root of every libcaddyfile error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The Caddyfile could not be parsed. what() is "<file>:<line>:<column>: <message>".
class ParseError : public Error {
 public:
  ParseError(std::string file, int line, int column, const std::string& message);
  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }      ///< 1-based
  int column() const noexcept { return column_; }  ///< 1-based; 0 when unknown

 private:
  std::string file_;
  int line_;
  int column_;
};

}  // namespace acmetool::caddyfile
