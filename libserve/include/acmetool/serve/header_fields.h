// Field lines in order ("Name: value"), as the reverse proxy receives, edits and sends them: the
// upstream request's and response's fields, trailers, the client's fields as the routes saw them.
// Names compare case-insensitively where the callers compare them; the list itself keeps them as
// written.
//
// One allocation holds the lines, as offsets, and the text of every name and value: parsing a
// response head copies its field lines once instead of allocating two strings per line. A line's
// name and value are views (string_view), valid until the list is next changed.
//
// The list itself is 24 bytes: it sits in the reverse proxy's coroutine frames, and Asio
// recycles a frame's memory only while the frame is at most 1020 bytes (thread_info_base: 255
// chunks of 4); a bigger frame costs a malloc and a free each time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace acmetool::serve {

class HeaderFields {
 public:
  /// One field line: views into the list's text.
  struct Line {
    std::string_view name;
    std::string_view value;
    bool operator==(const Line&) const = default;
  };

  class const_iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = Line;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Line;
    struct Arrow {  // for it->name: the line, held while the expression lasts
      Line line;
      const Line* operator->() const { return &line; }
    };

    const_iterator() = default;
    Line operator*() const { return list_->line(index_); }
    Arrow operator->() const { return Arrow{**this}; }
    Line operator[](difference_type n) const { return list_->line(index_ + static_cast<std::size_t>(n)); }
    const_iterator& operator++() { return ++index_, *this; }
    const_iterator operator++(int) { return const_iterator(list_, index_++); }
    const_iterator& operator--() { return --index_, *this; }
    const_iterator operator--(int) { return const_iterator(list_, index_--); }
    const_iterator& operator+=(difference_type n) { return index_ += static_cast<std::size_t>(n), *this; }
    const_iterator& operator-=(difference_type n) { return index_ -= static_cast<std::size_t>(n), *this; }
    friend const_iterator operator+(const_iterator it, difference_type n) { return it += n; }
    friend const_iterator operator+(difference_type n, const_iterator it) { return it += n; }
    friend const_iterator operator-(const_iterator it, difference_type n) { return it -= n; }
    friend difference_type operator-(const const_iterator& a, const const_iterator& b) {
      return static_cast<difference_type>(a.index_) - static_cast<difference_type>(b.index_);
    }
    bool operator==(const const_iterator& other) const { return index_ == other.index_; }
    auto operator<=>(const const_iterator& other) const { return index_ <=> other.index_; }
    std::size_t index() const { return index_; }  ///< the line's position in the list

   private:
    friend class HeaderFields;
    const_iterator(const HeaderFields* list, std::size_t index) : list_(list), index_(index) {}
    const HeaderFields* list_ = nullptr;
    std::size_t index_ = 0;
  };

  HeaderFields() = default;
  /// The lines given, in order: HeaderFields{{"Host", "example.com"}, {"Accept", "*/*"}}.
  HeaderFields(std::initializer_list<std::pair<std::string_view, std::string_view>> lines);
  HeaderFields(const HeaderFields& other);
  HeaderFields(HeaderFields&& other) noexcept
      : block_(std::move(other.block_)), span_count_(std::exchange(other.span_count_, 0)),
        span_capacity_(std::exchange(other.span_capacity_, 0)), text_size_(std::exchange(other.text_size_, 0)),
        text_capacity_(std::exchange(other.text_capacity_, 0)) {}
  HeaderFields& operator=(const HeaderFields& other) {
    HeaderFields copy(other);
    swap(copy);
    return *this;
  }
  HeaderFields& operator=(HeaderFields&& other) noexcept {
    HeaderFields taken(std::move(other));
    swap(taken);
    return *this;
  }
  ~HeaderFields() = default;
  void swap(HeaderFields& other) noexcept;

  std::size_t size() const { return span_count_; }
  bool empty() const { return span_count_ == 0; }
  Line operator[](std::size_t i) const { return line(i); }
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, span_count_); }
  bool operator==(const HeaderFields& other) const { return std::equal(begin(), end(), other.begin(), other.end()); }

  /// Room for `lines` lines and `text_bytes` bytes of names and values before anything grows.
  void reserve(std::size_t lines, std::size_t text_bytes = 0);
  void clear();

  /// Appends a line. `name` and `value` may be views of this list's own lines (not copied again).
  void emplace_back(std::string_view name, std::string_view value) { insert(span_count_, name, value); }
  /// Inserts a line before line `at` (at == size(): appends).
  void insert(std::size_t at, std::string_view name, std::string_view value);
  /// Line `i` becomes `name`/`value`, in place in the order. Either may be a view of this list.
  void replace(std::size_t i, std::string_view name, std::string_view value) {
    const Span span = span_of(name, value);  // first: it may move the lines
    spans()[i] = span;
  }
  void set_value(std::size_t i, std::string_view value) { replace(i, line(i).name, value); }
  /// Removes every line for which pred(Line) is true, keeping the others in order. `pred` is
  /// called once for each line, first to last.
  template <class Pred>
  void erase_if(Pred pred) {
    Span* const lines = spans();
    std::uint32_t kept = 0;
    for (std::uint32_t i = 0; i < span_count_; ++i) {
      if (!pred(line(lines[i]))) lines[kept++] = lines[i];
    }
    span_count_ = kept;
  }

  /// Takes a copy of `text` as the list's text, with no lines: a parser then adds its lines with
  /// emplace_back_at, which copies nothing more. Replaces what the list held.
  void assign_text(std::string_view text);
  /// Appends a line whose name and value lie in text() at these offsets (a parser reading the
  /// text it gave assign_text, which stays where it is while the list grows).
  void emplace_back_at(std::size_t name_at, std::size_t name_size, std::size_t value_at, std::size_t value_size) {
    if (span_count_ == span_capacity_) grow(span_count_ + std::size_t{1}, text_size_);
    spans()[span_count_++] = Span{static_cast<std::uint32_t>(name_at), static_cast<std::uint32_t>(name_size),
                                  static_cast<std::uint32_t>(value_at), static_cast<std::uint32_t>(value_size)};
  }
  /// Every name and value (and, after edits, text no line refers to any more).
  std::string_view text() const { return {chars(), text_size_}; }

 private:
  // A line as offsets into the text.
  struct Span {
    std::uint32_t name_at, name_size, value_at, value_size;
  };
  // The block: span_capacity_ Spans, then text_capacity_ bytes of text.
  Span* spans() const { return reinterpret_cast<Span*>(block_.get()); }
  char* chars() const { return reinterpret_cast<char*>(block_.get()) + span_capacity_ * sizeof(Span); }
  Line line(const Span& span) const {
    const char* const text = chars();
    return Line{std::string_view(text + span.name_at, span.name_size),
                std::string_view(text + span.value_at, span.value_size)};
  }
  Line line(std::size_t i) const { return line(spans()[i]); }
  Span span_of(std::string_view name, std::string_view value);
  // The offset of `piece` in the text: where it already lies, or where it was appended.
  std::uint32_t stored(std::string_view piece);
  // Whether `piece` lies in the text; its offset there.
  bool holds(std::string_view piece) const {
    const auto text = reinterpret_cast<std::uintptr_t>(chars());  // a total order, unlike <
    const auto at = reinterpret_cast<std::uintptr_t>(piece.data());
    return block_ && at >= text && at + piece.size() <= text + text_size_;
  }
  std::uint32_t offset(std::string_view piece) const { return static_cast<std::uint32_t>(piece.data() - chars()); }
  // A new block with room for at least `lines` lines and `text_bytes` bytes of text.
  void grow(std::size_t lines, std::size_t text_bytes);

  std::unique_ptr<std::byte[]> block_;
  std::uint32_t span_count_ = 0, span_capacity_ = 0;
  std::uint32_t text_size_ = 0, text_capacity_ = 0;  // text shorter than 4 GiB
};

}  // namespace acmetool::serve
