// HttpClient over libcurl, which is loaded with dlopen on first use (see curl_loader_internal.h).
#include <dlfcn.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <type_traits>

#include "acmetool/acme/http.h"
#include "curl_loader_internal.h"

namespace acmetool::acme {
namespace {

// Bodies are ACME JSON, PEM chains and CRL-sized documents at most; a server streaming more is
// broken or hostile, and the whole body is held in memory.
constexpr std::size_t kMaxBodyBytes = 16 * 1024 * 1024;

char to_lower_ascii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return to_lower_ascii(x) == to_lower_ascii(y);
         });
}

// Optional whitespace around field values is spaces and tabs (RFC 9110 §5.6.3).
std::string_view trim_ows(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

}  // namespace

std::string url_query_value(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const HttpHeader& h : headers) {
    if (equals_ignoring_case(h.name, name)) return h.value;
  }
  return std::nullopt;
}

std::vector<std::string> HttpResponse::headers_named(std::string_view name) const {
  std::vector<std::string> values;
  for (const HttpHeader& h : headers) {
    if (equals_ignoring_case(h.name, name)) values.push_back(h.value);
  }
  return values;
}

HttpError::HttpError(std::string url, const std::string& message, bool timed_out)
    : Error(message), url_(std::move(url)), timed_out_(timed_out) {}

namespace curl {
namespace {

constexpr const char* kSoname = "libcurl.so.4";

struct DlClose {
  void operator()(void* library) const noexcept { ::dlclose(library); }
};

template <class Function>
Function resolve(void* library, const char* name) {
  void* symbol = ::dlsym(library, name);
  if (symbol == nullptr) {
    throw Error(std::string("loading ") + kSoname + ": it has no " + name);
  }
  return reinterpret_cast<Function>(symbol);
}

Api load() {
  std::unique_ptr<void, DlClose> library(::dlopen(kSoname, RTLD_NOW | RTLD_LOCAL));
  if (!library) {
    throw Error(std::string("loading ") + kSoname + " (install libcurl4): " + ::dlerror());
  }
  void* l = library.get();
  Api a;
  a.easy_init = resolve<decltype(a.easy_init)>(l, "curl_easy_init");
  a.easy_setopt = resolve<decltype(a.easy_setopt)>(l, "curl_easy_setopt");
  a.easy_perform = resolve<decltype(a.easy_perform)>(l, "curl_easy_perform");
  a.easy_getinfo = resolve<decltype(a.easy_getinfo)>(l, "curl_easy_getinfo");
  a.easy_reset = resolve<decltype(a.easy_reset)>(l, "curl_easy_reset");
  a.easy_cleanup = resolve<decltype(a.easy_cleanup)>(l, "curl_easy_cleanup");
  a.easy_strerror = resolve<decltype(a.easy_strerror)>(l, "curl_easy_strerror");
  a.slist_append = resolve<decltype(a.slist_append)>(l, "curl_slist_append");
  a.slist_free_all = resolve<decltype(a.slist_free_all)>(l, "curl_slist_free_all");
  const auto global_init = resolve<CURLcode (*)(long)>(l, "curl_global_init");
  if (const CURLcode rc = global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
    throw Error(std::string("initializing libcurl: ") + a.easy_strerror(rc));
  }
  // Loaded for good: curl_global_cleanup at exit would race other threads' last requests.
  library.release();
  return a;
}

}  // namespace

const Api& api() {
  static std::once_flag once;
  static Api loaded;
  // A throwing call leaves `once` unset, so the next caller tries again.
  std::call_once(once, [] { loaded = load(); });
  return loaded;
}

}  // namespace curl

namespace {

// What the callbacks fill during one curl_easy_perform.
struct Exchange {
  HttpResponse response;
  bool body_too_large = false;
  std::exception_ptr failure;  // thrown inside a callback; exceptions must not cross libcurl
};

// Called once per header line, including status lines and the blank line ending each block.
size_t on_header_line(char* data, size_t size, size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  const size_t length = size * count;
  try {
    std::string_view line(data, length);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    std::vector<HttpHeader>& headers = exchange->response.headers;
    if (line.starts_with("HTTP/")) {
      // A new status line: after "100 Continue" (or another 1xx) only the final block counts.
      headers.clear();
    } else if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      // Obsolete line folding (RFC 9112 §5.2): the line continues the previous value.
      if (!headers.empty()) headers.back().value += " " + std::string(trim_ows(line));
    } else if (const auto colon = line.find(':'); colon != std::string_view::npos && colon > 0) {
      std::string name(line.substr(0, colon));
      std::transform(name.begin(), name.end(), name.begin(), to_lower_ascii);
      headers.push_back({std::move(name), std::string(trim_ows(line.substr(colon + 1)))});
    }
  } catch (...) {
    exchange->failure = std::current_exception();
    return 0;  // curl aborts the transfer with CURLE_WRITE_ERROR
  }
  return length;
}

size_t on_body_data(char* data, size_t size, size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  const size_t length = size * count;
  std::string& body = exchange->response.body;
  if (length > kMaxBodyBytes - body.size()) {
    exchange->body_too_large = true;
    return 0;
  }
  try {
    body.append(data, length);
  } catch (...) {
    exchange->failure = std::current_exception();
    return 0;
  }
  return length;
}

// "Name: value" for curl_slist_append; "Name;" is curl's spelling of a field with an empty value.
std::string header_line(const HttpHeader& header, const std::string& request_name) {
  const auto bad = [](const std::string& s) {
    return s.find_first_of("\r\n") != std::string::npos;
  };
  if (header.name.empty() || header.name.find(':') != std::string::npos || bad(header.name) ||
      bad(header.value)) {
    throw Error(request_name + ": invalid header field \"" + header.name + "\"");
  }
  return header.value.empty() ? header.name + ";" : header.name + ": " + header.value;
}

// curl reads 0 as "no timeout": a zero or negative timeout becomes the shortest one, 1 ms.
long timeout_ms(std::chrono::milliseconds timeout) {
  return std::max<long>(1, static_cast<long>(timeout.count()));
}

class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(const HttpOptions& options) : options_(options) {
    handle_.reset(curl::api().easy_init());
    if (!handle_) throw Error("creating a libcurl handle: curl_easy_init failed");
  }

  HttpResponse send(const HttpRequest& request) override;

 private:
  // Every option goes through here: the variadic curl_easy_setopt converts nothing, so an `int`
  // where curl reads a `long` would be undefined behaviour.
  template <class T>
  void set(CURLoption option, T value, const std::string& request_name) {
    static_assert(std::is_same_v<T, long> || std::is_same_v<T, curl_off_t> || std::is_pointer_v<T>,
                  "libcurl options take long, curl_off_t or a pointer");
    if (const CURLcode rc = curl::api().easy_setopt(handle_.get(), option, value); rc != CURLE_OK) {
      throw Error(request_name + ": libcurl option " + std::to_string(static_cast<int>(option)) +
                  " refused (libcurl 7.85 or later is needed): " + curl::api().easy_strerror(rc));
    }
  }

  void configure(const HttpRequest& request, Exchange& exchange, const std::string& request_name);
  void set_method(const HttpRequest& request, const std::string& request_name);

  HttpOptions options_;
  curl::EasyPtr handle_;
  curl::SlistPtr header_list_;               // read by curl during perform; replaced per request
  char error_buffer_[CURL_ERROR_SIZE] = {};  // filled by curl during perform
};

void CurlHttpClient::set_method(const HttpRequest& request, const std::string& request_name) {
  const std::string& method = request.method;
  // The handle is reused: a custom method set for an earlier request must not stick.
  set(CURLOPT_CUSTOMREQUEST, static_cast<const char*>(nullptr), request_name);
  if (method == "GET" || method == "DELETE") {
    set(CURLOPT_HTTPGET, 1L, request_name);
  } else if (method == "HEAD") {
    set(CURLOPT_NOBODY, 1L, request_name);
  } else if (method == "POST" || method == "PUT" || method == "PATCH") {
    // POSTFIELDS does not copy: `request` outlives the transfer. The size makes it byte-exact.
    set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()), request_name);
    set(CURLOPT_POSTFIELDS, request.body.data(), request_name);
  } else {
    throw Error(request_name + ": unsupported method (GET, HEAD, POST, PUT, PATCH or DELETE)");
  }
  if (method == "DELETE" || method == "PUT" || method == "PATCH") set(CURLOPT_CUSTOMREQUEST, method.c_str(), request_name);
}

void CurlHttpClient::configure(const HttpRequest& request, Exchange& exchange,
                               const std::string& request_name) {
  set(CURLOPT_URL, request.url.c_str(), request_name);
  set(CURLOPT_PROTOCOLS_STR, "https,http", request_name);
  set(CURLOPT_FOLLOWLOCATION, 0L, request_name);
  set(CURLOPT_NOSIGNAL, 1L,
      request_name);  // no SIGALRM for resolver timeouts in a threaded process
  // An empty proxy disables proxies, including http_proxy, https_proxy and all_proxy.
  set(CURLOPT_PROXY, "", request_name);
  set(CURLOPT_SSL_VERIFYPEER, 1L, request_name);
  set(CURLOPT_SSL_VERIFYHOST, 2L, request_name);
  if (!options_.ca_file.empty()) {
    set(CURLOPT_CAINFO, options_.ca_file.c_str(), request_name);
    // Only that file: a CA directory compiled into libcurl must not widen the trust.
    set(CURLOPT_CAPATH, static_cast<const char*>(nullptr), request_name);
  }
  set(CURLOPT_TIMEOUT_MS, timeout_ms(request.timeout), request_name);
  set(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms(options_.connect_timeout), request_name);
  set(CURLOPT_USERAGENT, options_.user_agent.c_str(), request_name);
  set(CURLOPT_ACCEPT_ENCODING, "identity", request_name);
  error_buffer_[0] = '\0';
  set(CURLOPT_ERRORBUFFER, static_cast<char*>(error_buffer_), request_name);
  set(CURLOPT_HEADERFUNCTION, &on_header_line, request_name);
  set(CURLOPT_HEADERDATA, static_cast<void*>(&exchange), request_name);
  set(CURLOPT_WRITEFUNCTION, &on_body_data, request_name);
  set(CURLOPT_WRITEDATA, static_cast<void*>(&exchange), request_name);
  // Fails early when Content-Length announces too much; on_body_data catches the rest.
  set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxBodyBytes), request_name);
  set_method(request, request_name);

  // "Expect:" with no value stops curl from sending "Expect: 100-continue" for large POSTs,
  // which costs a round trip or a one-second wait on servers that ignore it.
  curl::SlistPtr list(curl::api().slist_append(nullptr, "Expect:"));
  for (const HttpHeader& header : request.headers) {
    if (!list) break;
    curl_slist* grown =
        curl::api().slist_append(list.get(), header_line(header, request_name).c_str());
    if (grown == nullptr) list.reset();
  }
  if (!list) throw Error(request_name + ": out of memory building header fields");
  header_list_ = std::move(list);
  set(CURLOPT_HTTPHEADER, header_list_.get(), request_name);
}

HttpResponse CurlHttpClient::send(const HttpRequest& request) {
  const std::string request_name = request.method + " " + request.url;
  const curl::Api& lib = curl::api();
  // Resets options only: live connections, TLS sessions and the DNS cache stay for reuse.
  lib.easy_reset(handle_.get());
  Exchange exchange;
  configure(request, exchange, request_name);

  const CURLcode rc = lib.easy_perform(handle_.get());
  if (exchange.failure) std::rethrow_exception(exchange.failure);
  if (exchange.body_too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    throw HttpError(request.url, request_name + ": response body larger than 16 MiB");
  }
  if (rc != CURLE_OK) {
    const std::string detail = error_buffer_[0] != '\0' ? error_buffer_ : lib.easy_strerror(rc);
    throw HttpError(request.url, request_name + ": " + detail, rc == CURLE_OPERATION_TIMEDOUT);
  }
  lib.easy_getinfo(handle_.get(), CURLINFO_RESPONSE_CODE, &exchange.response.status);
  return std::move(exchange.response);
}

}  // namespace

std::unique_ptr<HttpClient> make_http_client(const HttpOptions& options) {
  return std::make_unique<CurlHttpClient>(options);
}

}  // namespace acmetool::acme
