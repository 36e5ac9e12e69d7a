// HeaderFields: field lines kept as offsets into one block, edited with views of their own text.
#include "acmetool/serve/header_fields.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace serve = acmetool::serve;
using serve::HeaderFields;
using Line = HeaderFields::Line;

namespace {

std::vector<std::string> rendered(const HeaderFields& fields) {
  std::vector<std::string> out;
  for (const auto& [name, value] : fields) out.push_back(std::string(name) + ": " + std::string(value));
  return out;
}

}  // namespace

TEST_CASE("header fields keep lines in order through appends, inserts, replacements and erasures", "[header_fields]") {
  HeaderFields fields{{"Host", "example.com"}, {"Accept", "*/*"}};
  fields.emplace_back("X-One", "1");
  fields.insert(0, "First", "0");
  fields.insert(fields.size(), "Last", "9");
  fields.set_value(2, "text/html");
  CHECK(rendered(fields) ==
        std::vector<std::string>{"First: 0", "Host: example.com", "Accept: text/html", "X-One: 1", "Last: 9"});
  fields.erase_if([](const Line& line) { return line.name.size() == 4; });  // Host, Last
  CHECK(rendered(fields) == std::vector<std::string>{"First: 0", "Accept: text/html", "X-One: 1"});
  CHECK(fields.size() == 3);
  CHECK(fields[1] == Line{"Accept", "text/html"});
  CHECK(fields.begin()->name == "First");
  CHECK(std::find_if(fields.begin(), fields.end(), [](const Line& l) { return l.value == "1"; }).index() == 2);
  fields.clear();
  CHECK(fields.empty());
  CHECK(fields == HeaderFields{});
}

TEST_CASE("header fields take views of their own text, also while the block grows", "[header_fields]") {
  // Each line copies a view of an earlier line: when the copy makes the block grow, the view
  // must have been read first (a use after free otherwise, which ASan reports).
  HeaderFields fields{{"A", std::string(40, 'a')}};
  for (int i = 0; i < 200; ++i) {
    const Line last = fields[fields.size() - 1];
    if (i % 2 == 0) {
      fields.emplace_back(last.value, last.name);  // the name is ours, the value is ours
    } else {
      fields.emplace_back("X-" + std::to_string(i), last.name);  // a new name, our value
    }
  }
  CHECK(fields.size() == 201);
  CHECK(fields[1] == Line{std::string(40, 'a'), "A"});
  CHECK(fields[2] == Line{"X-1", std::string(40, 'a')});
  // replace() with its own value while appending a long name
  const std::string long_name(5000, 'n');
  fields.replace(0, long_name, fields[0].value);
  CHECK(fields[0] == Line{long_name, std::string(40, 'a')});
  fields.set_value(0, fields[2].name);
  CHECK(fields[0].value == "X-1");
}

TEST_CASE("header fields copy and move as values", "[header_fields]") {
  HeaderFields original{{"Host", "a.example"}, {"Accept", "*/*"}};
  HeaderFields copy = original;
  copy.set_value(0, "b.example");
  CHECK(original[0].value == "a.example");
  CHECK(copy[0].value == "b.example");
  HeaderFields moved = std::move(copy);
  CHECK(moved[0].value == "b.example");
  CHECK(copy.empty());  // NOLINT(bugprone-use-after-move): a moved-from list is empty and usable
  copy.emplace_back("Again", "yes");
  CHECK(copy.size() == 1);
  moved = original;
  CHECK(moved == original);
  moved = HeaderFields{};
  CHECK(moved.empty());
  // Lists without lines copy too: cleared ones, and ones with text but no lines yet.
  HeaderFields cleared{{"A", "b"}};
  cleared.clear();
  CHECK(HeaderFields(cleared).empty());
  HeaderFields text_only;
  text_only.assign_text("X: y\r\n");
  const HeaderFields copied(text_only);
  CHECK(copied.empty());
  CHECK(copied.text() == "X: y\r\n");
  HeaderFields reserved;
  reserved.reserve(0, 0);
  CHECK(HeaderFields(reserved).empty());
}

TEST_CASE("header fields adopt a parser's text and add its lines without copying them", "[header_fields]") {
  HeaderFields fields{{"Old", "line"}};
  fields.assign_text("Content-Type: text/plain\r\nETag: \"x\"\r\n");
  CHECK(fields.empty());
  const std::string_view text = fields.text();
  fields.emplace_back(text.substr(0, 12), text.substr(14, 10));
  fields.emplace_back(text.substr(26, 4), text.substr(32, 3));
  CHECK(fields.text().size() == text.size());  // the lines are views, nothing was appended
  CHECK(rendered(fields) == std::vector<std::string>{"Content-Type: text/plain", "ETag: \"x\""});
}
