// Placeholder: filled in by the libcaddyfile work of issue 3.
namespace acmetool::caddyfile {}
