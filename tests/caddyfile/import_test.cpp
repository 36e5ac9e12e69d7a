// Placeholder: filled in by the libcaddyfile work of issue 3.
#include <catch2/catch.hpp>
