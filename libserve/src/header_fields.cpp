// HeaderFields: field lines as offsets into one block of text (see header_fields.h).
#include "acmetool/serve/header_fields.h"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace acmetool::serve {

namespace {

constexpr std::size_t kMaxSize = std::numeric_limits<std::uint32_t>::max();

// A capacity of at least `wanted`: `current` when that is enough and not zero, else doubled from
// it, and never below `least`.
std::size_t grown(std::size_t current, std::size_t wanted, std::size_t least) {
  if (wanted > kMaxSize) throw std::length_error("header fields too large");
  if (wanted <= current && current > 0) return current;
  return std::min(std::max({wanted, current * 2, least}), kMaxSize);
}

}  // namespace

HeaderFields::HeaderFields(std::initializer_list<std::pair<std::string_view, std::string_view>> lines) {
  std::size_t bytes = 0;
  for (const auto& [name, value] : lines) bytes += name.size() + value.size();
  reserve(lines.size(), bytes);
  for (const auto& [name, value] : lines) emplace_back(name, value);
}

HeaderFields::HeaderFields(const HeaderFields& other) {
  if (other.span_count_ == 0 && other.text_size_ == 0) return;
  reserve(other.span_count_, other.text_size_);
  std::memcpy(spans(), other.spans(), other.span_count_ * sizeof(Span));
  std::memcpy(chars(), other.chars(), other.text_size_);
  span_count_ = other.span_count_;
  text_size_ = other.text_size_;
}

void HeaderFields::swap(HeaderFields& other) noexcept {
  std::swap(block_, other.block_);
  std::swap(span_count_, other.span_count_);
  std::swap(span_capacity_, other.span_capacity_);
  std::swap(text_size_, other.text_size_);
  std::swap(text_capacity_, other.text_capacity_);
}

void HeaderFields::reserve(std::size_t lines, std::size_t text_bytes) {
  if (lines > span_capacity_ || text_size_ + text_bytes > text_capacity_) grow(lines, text_size_ + text_bytes);
}

void HeaderFields::clear() {
  span_count_ = 0;
  text_size_ = 0;
}

void HeaderFields::insert(std::size_t at, std::string_view name, std::string_view value) {
  const Span span = span_of(name, value);  // first: it may read this list's text
  if (span_count_ == span_capacity_) grow(span_count_ + std::size_t{1}, text_size_);
  Span* const lines = spans();
  std::memmove(lines + at + 1, lines + at, (span_count_ - at) * sizeof(Span));
  lines[at] = span;
  ++span_count_;
}

void HeaderFields::assign_text(std::string_view text) {
  clear();
  if (text.size() > text_capacity_) grow(span_capacity_, text.size());
  if (!text.empty()) std::memcpy(chars(), text.data(), text.size());
  text_size_ = static_cast<std::uint32_t>(text.size());
}

void HeaderFields::grow(std::size_t lines, std::size_t text_bytes) {
  // The usual response head fits the first block: 12 lines, and its text as it came (the
  // block stays small: a smaller malloc is a faster one).
  const std::size_t span_capacity = grown(span_capacity_, lines, 12);
  const std::size_t text_capacity = grown(text_capacity_, text_bytes, 64);
  auto block = std::make_unique_for_overwrite<std::byte[]>(span_capacity * sizeof(Span) + text_capacity);
  if (block_) {
    std::memcpy(block.get(), block_.get(), span_count_ * sizeof(Span));
    std::memcpy(block.get() + span_capacity * sizeof(Span), chars(), text_size_);
  }
  block_ = std::move(block);
  span_capacity_ = static_cast<std::uint32_t>(span_capacity);
  text_capacity_ = static_cast<std::uint32_t>(text_capacity);
}

std::uint32_t HeaderFields::stored(std::string_view piece) {
  if (holds(piece)) return offset(piece);
  if (text_size_ + piece.size() > text_capacity_) grow(span_count_, text_size_ + piece.size());
  const std::uint32_t at = text_size_;
  if (!piece.empty()) std::memcpy(chars() + at, piece.data(), piece.size());
  text_size_ += static_cast<std::uint32_t>(piece.size());
  return at;
}

HeaderFields::Span HeaderFields::span_of(std::string_view name, std::string_view value) {
  // A view of the text is placed before an append may move the text elsewhere.
  Span span{0, static_cast<std::uint32_t>(name.size()), 0, static_cast<std::uint32_t>(value.size())};
  if (holds(value)) {
    span.value_at = stored(value);
    span.name_at = stored(name);
  } else {
    span.name_at = stored(name);
    span.value_at = stored(value);
  }
  return span;
}

}  // namespace acmetool::serve
