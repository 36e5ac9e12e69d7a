// libcurl, loaded at run time: the function pointers libacme calls and RAII owners built on them.
// <curl/curl.h> is included for its types and constants only; no libcurl symbol is linked, so
// the acmetool binary does not load libcurl (and its ~33 dependencies) at start-up.
#pragma once

#include <curl/curl.h>

#include <memory>

namespace acmetool::acme::curl {

/// The libcurl functions libacme uses, resolved with dlsym. The variadic ones must be called with
/// exactly the argument type each option documents (long, char*, void*, curl_off_t, a callback):
/// without curl's type-checking macros nothing converts them.
struct Api {
  CURL* (*easy_init)();
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*easy_reset)(CURL*);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

/// Loads libcurl.so.4 and runs curl_global_init, both once per process; returns the resolved
/// functions, valid until the process exits (libcurl is never unloaded). Thread-safe. Throws
/// acme::Error naming what failed; a later call tries again.
const Api& api();

/// Owns a CURL easy handle: curl_easy_cleanup on destruction.
struct EasyCleanup {
  void operator()(CURL* handle) const noexcept { api().easy_cleanup(handle); }
};
using EasyPtr = std::unique_ptr<CURL, EasyCleanup>;

/// Owns a header list: curl_slist_free_all on destruction.
struct SlistFree {
  void operator()(curl_slist* list) const noexcept { api().slist_free_all(list); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistFree>;

}  // namespace acmetool::acme::curl
