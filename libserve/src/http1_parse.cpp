// HTTP/1.x parsing without Beast's parser: upstream responses, and plain client request heads
// (see http1_parse_internal.h).
#include "http1_parse_internal.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/verb.hpp>

#include "ascii_internal.h"

namespace acmetool::serve::http1 {

namespace {

// Which bytes may appear where (RFC 9110 §5.1, §5.5): a field name's (and a method's) token
// characters; a field value's or reason phrase's visible characters, blanks and obs-text; a
// request-target's visible characters.
struct CharClasses {
  std::array<bool, 256> token{};
  std::array<bool, 256> text{};
  std::array<bool, 256> visible{};
  constexpr CharClasses() {
    for (int c = 0x21; c < 0x7f; ++c) visible[c] = true;
    for (int c = 0x21; c < 0x7f; ++c) text[c] = true;
    for (int c = 0x80; c < 0x100; ++c) text[c] = true;
    text[' '] = text['\t'] = true;
    for (int c = '0'; c <= '9'; ++c) token[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) token[c] = token[c - 'a' + 'A'] = true;
    for (const char c : std::string_view("!#$%&'*+-.^_`|~")) token[static_cast<unsigned char>(c)] = true;
  }
};
constexpr CharClasses kChars;

// Where a field value's characters end, from `p` on: at the CR ending its line, or at a byte that
// makes the line invalid. Eight bytes at a time while none of them is a control character (below
// 0x20, or DEL), which the usual value is until its CR; byte by byte from there.
const unsigned char* end_of_text(const unsigned char* p, const unsigned char* end) {
  constexpr std::uint64_t kOnes = 0x0101010101010101, kHighs = 0x8080808080808080;
  while (end - p >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, sizeof word);
    const std::uint64_t below_space = (word - kOnes * 0x20) & ~word & kHighs;
    const std::uint64_t del = word ^ (kOnes * 0x7f);
    if ((below_space | ((del - kOnes) & ~del & kHighs)) != 0) break;
    p += 8;
  }
  while (kChars.text[*p]) ++p;
  return p;
}

bool all_of(std::string_view text, const std::array<bool, 256>& allowed) {
  return std::all_of(text.begin(), text.end(), [&allowed](char c) { return allowed[static_cast<unsigned char>(c)]; });
}

// `name` is `lowercase` but for ASCII case.
bool is_named(std::string_view name, std::string_view lowercase) {
  return name.size() == lowercase.size() && equal_ignoring_case(name, lowercase);
}

// Calls `each` with every element of a comma-separated list, blanks trimmed, empty ones included.
template <class F>
void for_each_element(std::string_view list, F each) {
  for (;;) {
    const std::size_t comma = list.find(',');
    each(trim_blanks(list.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

bool parse_decimal(std::string_view digits, std::uint64_t& value) {
  if (digits.empty() || digits.size() > 19) return false;  // 19 digits always fit
  value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

// What the fields say about framing and the connection.
struct FramingFields {
  std::optional<std::uint64_t> length;
  bool transfer_encoding = false;
  bool chunked = false;
  bool close = false;
  bool keep_alive = false;
};

// Beast's rules: a Content-Length list must hold one value, however often; a Content-Length and a
// Transfer-Encoding together are refused, as is a second Transfer-Encoding after a chunked one.
bool note_framing(std::string_view name, std::string_view value, FramingFields& seen, std::string& why) {
  switch (name.size()) {
    case 10:
      if (!is_named(name, "connection")) return true;
      for_each_element(value, [&seen](std::string_view option) {
        if (is_named(option, "close")) seen.close = true;
        if (is_named(option, "keep-alive")) seen.keep_alive = true;
      });
      return true;
    case 14: {
      if (!is_named(name, "content-length")) return true;
      bool valid = !seen.transfer_encoding;
      for_each_element(value, [&](std::string_view digits) {
        std::uint64_t length = 0;
        if (!parse_decimal(digits, length) || (seen.length && *seen.length != length)) valid = false;
        seen.length = length;
      });
      if (!valid) why = seen.transfer_encoding ? "both Content-Length and Transfer-Encoding" : "bad Content-Length";
      return valid;
    }
    case 17: {
      if (!is_named(name, "transfer-encoding")) return true;
      if (seen.length || seen.chunked) {
        why = seen.length ? "both Content-Length and Transfer-Encoding" : "bad Transfer-Encoding";
        return false;
      }
      seen.transfer_encoding = true;
      std::string_view last;
      for_each_element(value, [&last](std::string_view coding) {
        if (!coding.empty()) last = coding;
      });
      seen.chunked = is_named(last, "chunked");
      return true;
    }
    default: return true;
  }
}

}  // namespace

std::size_t head_end(std::string_view bytes, std::size_t& from) {
  const std::size_t at = bytes.find("\r\n\r\n", from);
  if (at == std::string_view::npos) {
    from = bytes.size() > 3 ? bytes.size() - 3 : 0;
    return std::string_view::npos;
  }
  return at + 4;
}

namespace {

// The field lines of `lines` ("Name: value" CRLF each, then the blank line), one call of
// add(name, value, folded) each, values without their leading and trailing blanks; false with
// `why` for a line that is not a field, or as soon as `add` returns false.
template <class Add>
bool parse_field_lines(std::string_view lines, std::string& why, Add add) {
  // One pass over each line: its name's token characters up to the colon, then its value's
  // characters up to the CRLF, which must follow. The scans need no bounds checks: `lines` ends
  // with CR LF, and neither is a token or value character.
  if (!lines.ends_with("\r\n")) {
    why = "bad field line";
    return false;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(lines.data());
  const auto* const end = p + lines.size();
  const auto blank = [](unsigned char c) { return c == ' ' || c == '\t'; };
  const auto at_crlf = [&end](const unsigned char* at) { return end - at >= 2 && at[0] == '\r' && at[1] == '\n'; };
  const auto text = [](const unsigned char* from, const unsigned char* to) {
    return std::string_view(reinterpret_cast<const char*>(from), static_cast<std::size_t>(to - from));
  };
  for (;;) {
    if (at_crlf(p)) return true;  // the blank line
    if (p == end) {
      why = "bad field line";  // no blank line
      return false;
    }
    const unsigned char* const name = p;
    while (kChars.token[*p]) ++p;
    if (p == name || *p != ':') {
      why = "bad field name";
      return false;
    }
    const unsigned char* const name_end = p++;
    while (blank(*p)) ++p;
    const unsigned char* const value = p;
    p = end_of_text(p, end);
    if (!at_crlf(p)) {
      why = "bad field value";
      return false;
    }
    const unsigned char* value_end = p;
    while (value_end > value && blank(value_end[-1])) --value_end;
    p += 2;
    if (p == end || !blank(*p)) {
      if (!add(text(name, name_end), text(value, value_end), false)) return false;
      continue;
    }
    // obs-fold: the lines that start with a blank continue this value, joined with a space.
    std::string folded(text(value, value_end));
    while (p < end && blank(*p)) {
      const unsigned char* const more = p;
      while (kChars.text[*p]) ++p;
      if (!at_crlf(p)) {
        why = "bad field value";
        return false;
      }
      if (const std::string_view line = trim_blanks(text(more, p)); !line.empty()) {
        (folded.empty() ? folded : folded.append(1, ' ')).append(line);
      }
      p += 2;
    }
    if (!add(text(name, name_end), std::string_view(folded), true)) return false;
  }
}

}  // namespace

bool parse_fields(std::string_view lines, HeaderFields& fields, std::string& why) {
  // The lines are copied once, and each field is the offsets of its name and value in the copy
  // (which are their offsets in `lines`: the parse reads `lines`, which stays put while the list
  // grows). A folded value is not in the copy: it is added once the parse is over.
  fields.assign_text(lines);
  std::vector<std::pair<std::size_t, std::string>> folded;
  const auto at = [&lines](std::string_view piece) { return static_cast<std::size_t>(piece.data() - lines.data()); };
  const bool parsed = parse_field_lines(lines, why, [&](std::string_view name, std::string_view value, bool is_folded) {
    if (is_folded) {
      folded.emplace_back(fields.size(), value);
      fields.emplace_back_at(at(name), name.size(), 0, 0);
    } else {
      fields.emplace_back_at(at(name), name.size(), at(value), value.size());
    }
    return true;
  });
  for (const auto& [index, value] : folded) fields.set_value(index, value);
  return parsed;
}

Parsed parse_head(std::string_view bytes, bool head_request, UpstreamResponseHead& head, Framing& framing,
                  std::string& why) {
  // "HTTP/1.1 200 OK": the version, three digits, and a reason phrase that may be missing.
  const std::size_t line_end = bytes.find("\r\n");
  const std::string_view line = bytes.substr(0, line_end);
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || !digit(line[7]) || line[8] != ' ' || line[9] < '1' ||
      line[9] > '9' || !digit(line[10]) || !digit(line[11]) || (line.size() > 12 && line[12] != ' ') ||
      !all_of(line.substr(std::min<std::size_t>(line.size(), 13)), kChars.text)) {
    why = "bad status line";
    return Parsed::Invalid;
  }
  head.version = line[7] == '0' ? 10 : 11;
  head.status = static_cast<unsigned>((line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0'));
  head.reason.assign(line.size() > 13 ? line.substr(13) : std::string_view());
  if (!parse_fields(bytes.substr(line_end + 2), head.fields, why)) return Parsed::Invalid;

  FramingFields seen;
  for (const auto& [name, value] : head.fields) {
    if (!note_framing(name, value, seen, why)) return Parsed::Invalid;
  }
  framing = Framing{};
  framing.keep_alive = head.version == 11 ? !seen.close : seen.keep_alive && !seen.close;
  const unsigned status = head.status;
  if (head_request || status < 200 || status == 204 || status == 304) {
    framing.kind = Framing::Kind::None;
  } else if (seen.length) {
    framing.kind = *seen.length > 0 ? Framing::Kind::Length : Framing::Kind::None;
    framing.length = *seen.length;
  } else if (seen.chunked) {
    framing.kind = Framing::Kind::Chunked;
  } else {
    framing.kind = Framing::Kind::UntilClose;  // the end of the connection is the end of the body
    framing.keep_alive = false;
  }
  return Parsed::Done;
}

// ---- requests ----

namespace {

// A Connection list as Beast's parser takes it without a doubt: tokens between commas, none
// empty; its "close" and "keep-alive" noted. False: Beast's parser is to judge it.
bool plain_connection_options(std::string_view list, bool& close, bool& keep_alive) {
  bool valid = true;
  for_each_element(list, [&](std::string_view option) {
    if (option.empty() || !all_of(option, kChars.token)) valid = false;
    if (is_named(option, "close")) close = true;
    if (is_named(option, "keep-alive")) keep_alive = true;
  });
  return valid;
}

}  // namespace

std::size_t parse_plain_request_head(std::string_view bytes, std::size_t limit,
                                     boost::beast::http::request_header<>& head, bool& keep_alive) {
  namespace http = boost::beast::http;
  std::size_t from = 0;
  const std::size_t end = head_end(bytes, from);
  if (end == std::string_view::npos || end >= limit) return 0;
  // "GET /path HTTP/1.1": a token, a target of visible characters, and HTTP/1.0 or 1.1.
  const std::string_view all = bytes.substr(0, end);
  const std::size_t line_end = all.find("\r\n");
  const std::string_view line = all.substr(0, line_end);
  const std::size_t method_end = line.find(' ');
  if (method_end == std::string_view::npos || method_end == 0) return 0;
  const std::size_t target_end = line.find(' ', method_end + 1);
  if (target_end == std::string_view::npos || target_end == method_end + 1) return 0;
  const std::string_view method = line.substr(0, method_end);
  const std::string_view target = line.substr(method_end + 1, target_end - method_end - 1);
  const std::string_view version = line.substr(target_end + 1);
  if (!all_of(method, kChars.token) || !all_of(target, kChars.visible)) return 0;
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return 0;
  if (const http::verb verb = http::string_to_verb(method); verb != http::verb::unknown) {
    head.method(verb);
  } else {
    head.method_string(method);
  }
  head.target(target);
  head.version(version.back() == '1' ? 11 : 10);

  // What frames a body, upgrades the connection or folds a line is left to Beast's parser.
  bool close = false, keep = false;
  std::string why;
  const bool plain = parse_field_lines(all.substr(line_end + 2), why,
                                       [&](std::string_view name, std::string_view value, bool folded) {
    if (folded) return false;
    switch (name.size()) {
      case 7:
        if (is_named(name, "upgrade")) return false;
        break;
      case 10:
        if (is_named(name, "connection") && !plain_connection_options(value, close, keep)) return false;
        break;
      case 14:
        if (is_named(name, "content-length")) return false;
        break;
      case 16:
        if (is_named(name, "proxy-connection") && !plain_connection_options(value, close, keep)) return false;
        break;
      case 17:
        if (is_named(name, "transfer-encoding")) return false;
        break;
    }
    head.insert(name, value);
    return true;
  });
  if (!plain) return 0;
  keep_alive = head.version() == 11 ? !close : keep;  // as Beast decides
  return end;
}

// ---- BodyDecoder ----

BodyDecoder::BodyDecoder(const Framing& framing, std::size_t limit) : left_(framing.length), limit_(limit) {
  switch (framing.kind) {
    case Framing::Kind::None: state_ = State::Done; break;
    case Framing::Kind::Length: state_ = framing.length > 0 ? State::Length : State::Done; break;
    case Framing::Kind::Chunked: state_ = State::ChunkSize; break;
    case Framing::Kind::UntilClose: state_ = State::UntilClose; break;
  }
}

std::size_t BodyDecoder::fail(std::string why) {
  state_ = State::Failed;
  error_ = std::move(why);
  return 0;
}

std::size_t BodyDecoder::decode(std::string_view in, std::string& out, std::size_t room) {
  std::size_t used = 0;
  // Up to `room` bytes of the body from `in`, appended to `out`.
  const auto take = [&](std::uint64_t most) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>({most, in.size() - used, room}));
    out.append(in.data() + used, n);
    used += n;
    room -= n;
    return static_cast<std::uint64_t>(n);
  };
  while (used < in.size()) {
    const std::string_view rest = in.substr(used);
    switch (state_) {
      case State::Length:
        left_ -= take(left_);
        if (left_ == 0) state_ = State::Done;
        if (room == 0) return used;
        break;
      case State::UntilClose:
        take(std::numeric_limits<std::uint64_t>::max());
        return used;
      case State::ChunkData:
        left_ -= take(left_);
        if (left_ == 0) state_ = State::ChunkDataEnd;
        if (room == 0 && state_ == State::ChunkData) return used;
        break;
      case State::ChunkDataEnd:
        if (rest.size() < 2) return used;
        if (!rest.starts_with("\r\n")) return fail("bad chunk");
        used += 2;
        state_ = State::ChunkSize;
        break;
      case State::ChunkSize: {  // 1*HEXDIG [ BWS ";" chunk-ext ] CRLF
        // The limit holds however the bytes arrive: for a line not yet whole, and for a whole one.
        const std::size_t end = rest.find("\r\n");
        if (std::min(end, rest.size()) > limit_) return fail("chunk size line too long");
        if (end == std::string_view::npos) return used;
        const std::string_view line = rest.substr(0, end);
        std::uint64_t size = 0;
        std::size_t digits = 0;
        for (; digits < line.size(); ++digits) {
          const char c = ascii_lower(line[digits]);
          const int value = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
          if (value < 0) break;
          if (size >> 60 != 0) return fail("bad chunk size");  // would overflow
          size = size * 16 + static_cast<std::uint64_t>(value);
        }
        const std::string_view extension = trim_blanks(line.substr(digits));
        if (digits == 0 || (!extension.empty() && (extension.front() != ';' || !all_of(extension, kChars.text)))) {
          return fail("bad chunk size");
        }
        used += end + 2;
        left_ = size;
        state_ = size > 0 ? State::ChunkData : State::Trailers;
        break;
      }
      case State::Trailers: {
        if (rest.size() < 2) return used;
        if (rest.starts_with("\r\n")) {
          used += 2;
          state_ = State::Done;
          return used;
        }
        std::size_t from = 0;
        const std::size_t end = head_end(rest, from);
        if (std::min(end, rest.size()) > limit_) return fail("trailer fields too large");
        if (end == std::string_view::npos) return used;
        std::string why;
        if (!parse_fields(rest.substr(0, end), trailers_, why)) return fail("bad trailer: " + why);
        used += end;
        state_ = State::Done;
        return used;
      }
      case State::Done:
      case State::Failed: return used;
    }
  }
  return used;
}

void BodyDecoder::end_of_input() {
  if (state_ == State::UntilClose) {
    state_ = State::Done;
  } else if (state_ != State::Done && state_ != State::Failed) {
    fail("partial message");
  }
}

}  // namespace acmetool::serve::http1
