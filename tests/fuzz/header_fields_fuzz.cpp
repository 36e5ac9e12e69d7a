// Fuzzes HeaderFields (libserve/src/header_fields.cpp) against a model: a vector of string pairs
// that every operation is also applied to. The input is a list of operations, each of which may
// take its name or value from the list's own lines (the views that must survive the block
// growing under them); after each one, the list and the model must hold the same lines. Under
// ASan, a view read after the block moved is reported.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "acmetool/serve/header_fields.h"

namespace serve = acmetool::serve;

namespace {

void require(bool holds) {
  if (!holds) std::abort();
}

using Model = std::vector<std::pair<std::string, std::string>>;

// Reads the input a byte at a time; zeros once it is used up.
struct Input {
  const std::uint8_t* data;
  std::size_t size;
  std::uint8_t next() {
    if (size == 0) return 0;
    --size;
    return *data++;
  }
  bool done() const { return size == 0; }
};

// A piece of text: from a line of the list (its name or value, or part of it) when the input
// says so and there is one, else new text of the input's choosing.
std::string_view piece(Input& in, const serve::HeaderFields& fields, std::string& scratch) {
  const std::uint8_t how = in.next();
  if (how % 3 != 0 && !fields.empty()) {
    const serve::HeaderFields::Line line = fields[in.next() % fields.size()];
    const std::string_view text = how % 3 == 1 ? line.name : line.value;
    const std::size_t from = text.empty() ? 0 : in.next() % (text.size() + 1);
    return text.substr(from);
  }
  const std::size_t length = in.next() % 4 == 0 ? 300u + in.next() * 8u : in.next() % 24u;
  scratch.assign(length, static_cast<char>('a' + how % 26));
  return scratch;
}

void check(const serve::HeaderFields& fields, const Model& model) {
  require(fields.size() == model.size());
  for (std::size_t i = 0; i < model.size(); ++i) {
    require(fields[i].name == model[i].first && fields[i].value == model[i].second);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  serve::HeaderFields fields;
  Model model;
  std::string scratch_name, scratch_value;
  for (int steps = 0; steps < 200 && !in.done(); ++steps) {
    const std::uint8_t op = in.next() % 8;
    const std::size_t at = model.empty() ? 0 : in.next() % model.size();
    switch (op) {
      case 0:
      case 1: {  // append or insert
        const std::string_view name = piece(in, fields, scratch_name);
        const std::string_view value = piece(in, fields, scratch_value);
        const std::size_t where = op == 0 ? model.size() : at;
        model.insert(model.begin() + static_cast<std::ptrdiff_t>(where), {std::string(name), std::string(value)});
        if (op == 0) fields.emplace_back(name, value);
        else fields.insert(where, name, value);
        break;
      }
      case 2:  // replace a line
        if (!model.empty()) {
          const std::string_view name = piece(in, fields, scratch_name);
          const std::string_view value = piece(in, fields, scratch_value);
          model[at] = {std::string(name), std::string(value)};
          fields.replace(at, name, value);
        }
        break;
      case 3:  // a new value
        if (!model.empty()) {
          const std::string_view value = piece(in, fields, scratch_value);
          model[at].second = std::string(value);
          fields.set_value(at, value);
        }
        break;
      case 4: {  // remove the lines whose name is this long
        const std::size_t length = in.next() % 8;
        std::erase_if(model, [&](const auto& line) { return line.first.size() % 8 == length; });
        fields.erase_if([&](const serve::HeaderFields::Line& line) { return line.name.size() % 8 == length; });
        break;
      }
      case 5: {  // copies and moves
        serve::HeaderFields copy = fields;
        check(copy, model);
        fields = std::move(copy);
        break;
      }
      case 6:  // room made ahead
        fields.reserve(in.next(), in.next() * 4u);
        break;
      case 7:  // a parser's text, with its lines as views of it
        if (in.next() % 4 == 0) {
          fields.assign_text("Name: value\r\nOther: x\r\n");
          fields.emplace_back(fields.text().substr(0, 4), fields.text().substr(6, 5));
          model = {{"Name", "value"}};
        }
        break;
    }
    check(fields, model);
  }
  require(fields == serve::HeaderFields(fields));
  return 0;
}
