#include "acmetool/serve/error.h"

// libserve's connection code arrives with the serve issue; this unit anchors the target until then.
