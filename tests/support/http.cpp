#include "http.h"

#include <curl/curl.h>

#include <memory>

#include "acmetool/pki/ossl.h"

namespace acmetool::test {
namespace {

using acmetool::pki::CFree;
using CurlPtr = std::unique_ptr<CURL, CFree<&curl_easy_cleanup>>;
using CurlSlistPtr = std::unique_ptr<curl_slist, CFree<&curl_slist_free_all>>;

// curl_global_init is not thread-safe on every libcurl build; a function-local static runs it once.
void init_curl_once() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    throw HttpError(std::string("initializing libcurl: ") + curl_easy_strerror(rc), rc);
  }
}

size_t append_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

struct Request {
  std::string method = "GET";
  std::string url;
  std::filesystem::path ca_file;
  std::string body;
  std::chrono::milliseconds timeout{};
};

HttpResponse perform(const Request& request) {
  init_curl_once();
  CurlPtr curl(curl_easy_init());
  if (!curl) {
    throw HttpError(request.method + " " + request.url + ": curl_easy_init failed",
                    CURLE_FAILED_INIT);
  }
  CURL* h = curl.get();
  HttpResponse response;
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  // An empty proxy disables proxies, including any from http_proxy / https_proxy / all_proxy.
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &append_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &response.body);
  if (!request.ca_file.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO, request.ca_file.c_str());
    // Only the given file: a CA directory from the build's defaults must not widen the trust.
    curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);
  }
  CurlSlistPtr headers;
  if (request.method == "POST") {
    headers.reset(curl_slist_append(nullptr, "Content-Type: application/json"));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
  }
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    const std::string detail = error[0] ? error : curl_easy_strerror(rc);
    throw HttpError(request.method + " " + request.url + ": " + detail, rc);
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace

HttpResponse https_get(const std::string& url, const std::filesystem::path& ca_file,
                       std::chrono::milliseconds timeout) {
  return perform({.method = "GET", .url = url, .ca_file = ca_file, .timeout = timeout});
}

HttpResponse http_get(const std::string& url, std::chrono::milliseconds timeout) {
  return perform({.method = "GET", .url = url, .timeout = timeout});
}

HttpResponse http_post(const std::string& url, const std::string& body,
                       std::chrono::milliseconds timeout) {
  return perform({.method = "POST", .url = url, .body = body, .timeout = timeout});
}

}  // namespace acmetool::test
