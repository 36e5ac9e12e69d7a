// Placeholder: `acmetool serve` as a reverse proxy, end to end (being written).
#include <catch2/catch.hpp>

TEST_CASE("serve_proxy placeholder", "[proxy]") { CHECK(true); }
