// Placeholder: a multi-connection HTTP/1.1 upstream for reverse_proxy tests (being written).
#pragma once
