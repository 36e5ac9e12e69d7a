#include "test_upstream.h"
