// What a request gets, whatever the protocol: the site and its routes, the file server, `encode`,
// reverse_proxy's upstream head, redirects to HTTPS, and the access log line.
#include "server_internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "acmetool/pki/hostname.h"
#include "acmetool/serve/file_server.h"
#include "acmetool/serve/routes.h"

namespace acmetool::serve {

namespace {

// The host a request names, without a port, lower case; "" when absent.
std::string request_host(const http::request_header<>& req) {
  std::string host(req[http::field::host]);
  if (!host.empty() && host.front() == '[') {  // [v6]:port
    const auto end = host.find(']');
    host = end == std::string::npos ? "" : host.substr(1, end - 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  return normalise_server_name(host);
}

bool host_matches(const SiteOptions& site, const std::string& host) {
  if (site.hosts.empty()) return true;
  for (const std::string& pattern : site.hosts) {
    if (pki::match_wildcard(host, pattern)) return true;
  }
  return false;
}

}  // namespace

// ---- handlers ----

// handle() on the connection's thread, or, for a request with credentials (basic_auth may
// spend ~1 s in bcrypt on them), on the blocking pool so that other connections are not stalled.
// Not a coroutine itself (g++ 12 and lambda captures, see async_certificate).
awaitable<Reply> Server::Impl::handle_request(const http::request_header<>& req, bool https,
                                              const Peer& peer) {
  if (!checks_credentials(req)) return ready_reply(handle(req, https, peer));
  return asio::co_spawn(blocking, handle_on(this, &req, https, &peer), use_awaitable);
}
awaitable<Reply> Server::Impl::ready_reply(Reply reply) { co_return reply; }

// handle_request, then, for reverse_proxy, the upstream's response head.
awaitable<Reply> Server::Impl::respond(const http::request_header<>& req, bool https,
                                       const Peer& peer) {
  Reply reply = co_await handle_request(req, https, peer);
  if (reply.relay) co_await relay_head(reply, req, req.version());
  co_return reply;
}

// `encode` on a relayed response, decided on its head as Caddy decides on the first write: a
// response of unknown length counts as long enough. Vary: Accept-Encoding whenever it qualifies;
// with a coding the client accepts, Content-Encoding, the coding in the ETag, no Content-Length
// or Accept-Ranges, and a compressor for the pieces (Relay::transform).
void Server::Impl::encode_relay(Reply& reply) {
  Relay& relay = *reply.relay;
  const bool not_modified = relay.outcome.status == 304;
  EncodeResponse facts;
  facts.status = not_modified ? 200 : relay.outcome.status;  // a 304 gets what its 200 would
  for (const auto& field : reply.head) facts.headers.emplace_back(field.name_string(), field.value());
  facts.length = std::numeric_limits<std::uint64_t>::max();
  if (const std::string_view length = reply.head[http::field::content_length]; !length.empty()) {
    std::from_chars(length.data(), length.data() + length.size(), facts.length);
  }
  if (!should_encode(*relay.encode, facts)) return;
  if (!vary_lists(reply.head[http::field::vary], "Accept-Encoding")) reply.head.insert(http::field::vary, "Accept-Encoding");
  if (!relay.coding) return;
  if (const std::string_view etag = reply.head[http::field::etag]; !etag.empty()) {
    reply.head.set(http::field::etag, encoded_etag(etag, relay.coding->name));
  }
  if (relay.bodyless) return;
  reply.head.set(http::field::content_encoding, relay.coding->name);
  reply.head.erase(http::field::content_length);
  reply.head.erase(http::field::accept_ranges);
  relay.encoder = make_encoder(relay.coding->name, relay.coding->level);
  relay.flush_each = reply.head[http::field::content_type].starts_with("text/event-stream");
}

// Sends a reverse_proxy call upstream and turns the outcome into the reply's head: the
// upstream's status and fields (after header_down, then the `header` handlers), or our own 502,
// 503 or 504 with the reason in the log.
awaitable<void> Server::Impl::relay_head(Reply& reply, const http::request_header<>& req, unsigned version) {
  const bool head_only = req.method() == http::verb::head;
  Relay& relay = *reply.relay;
  // By reference: `relay` outlives the round trip, and this frame holds no copy of either.
  co_await relay.proxy->forward(relay.call, relay.outcome, t_io_thread);
  ProxyOutcome& outcome = relay.outcome;
  reply.head = {};
  reply.head.version(version);
  reply.head.result(static_cast<unsigned>(outcome.status));
  if (!outcome.error.empty()) {
    log("reverse_proxy: " + outcome.request_line + ": " + outcome.error + " (" + std::to_string(outcome.status) + ")");
    const std::vector<caddyfile::HeaderOp> ops = std::move(relay.response_headers);
    reply.relay.reset();
    apply_header_ops(reply.head, ops);
    reply.finish(head_only);
    co_return;
  }
  if (outcome.response_routes && relay.routes_input && run_response_routes(reply, req, version)) co_return;
  reply.upstream_fields = std::move(outcome.fields);
  reply.head.result(static_cast<unsigned>(outcome.status));  // copy_response may have changed it
  if (!relay.response_headers.empty() || relay.encode) {  // edited as Beast fields
    reply.merge_upstream_fields();
    apply_header_ops(reply.head, relay.response_headers);
  }
  const int status = outcome.status;
  relay.bodyless = head_only || status == 204 || status == 304 || (status >= 100 && status < 200);
  if (relay.encode) encode_relay(reply);
  if (relay.bodyless || reply.has_field(http::field::content_length)) co_return;
  if (version == 11) {
    reply.head.set(http::field::transfer_encoding, "chunked");
  } else if (version == 10) {
    reply.close = true;  // the end of the body is the end of the connection
  }
}
awaitable<Reply> Server::Impl::handle_on(Impl* self, const http::request_header<>* req, bool https,
                                         const Peer* peer) {
  co_return self->handle(*req, https, *peer);
}

Reply Server::Impl::handle(const http::request_header<>& req, bool https, const Peer& peer) {
  const std::string host = request_host(req);
  // The site for this host and scheme: an https site on the HTTP port only redirects.
  const std::shared_ptr<const SiteTable> table = sites_for_request();
  const SiteOptions* site = nullptr;
  for (const SiteOptions& s : table->sites) {
    if (host_matches(s, host) && (s.https || !https)) {
      site = &s;
      break;
    }
  }
  Reply reply;
  const std::string_view target = req.target();
  if (!https && options.http01 && target.starts_with(Http01Responder::kPathPrefix)) {
    const auto answer = options.http01->answer(target.substr(Http01Responder::kPathPrefix.size()));
    reply = answer ? text_reply(http::status::ok, *answer, req.version())
                   : text_reply(http::status::not_found, "", req.version());
    if (answer) reply.head.set(http::field::content_type, "text/plain");
  } else if (!site) {
    reply = text_reply(http::status::not_found, "", req.version());
  } else if (!https && site->https) {
    reply = table->redirect_http ? redirect_to_https(req, host) : text_reply(http::status::not_found, "", 11);
  } else if (site->routes) {
    reply = run_routes(table, *site, req, https, host, peer);
  } else {
    reply = serve_file(site->files, req, req.target());
  }
  if (site) reply.log = site->access_log;
  if (reply.head.result() == http::status::not_modified) reply.head.erase(http::field::content_type);
  reply.head.version(req.version());
  reply.finish(req.method() == http::verb::head);
  return reply;
}

// A Caddyfile site: the routes decide, this sends.
Reply Server::Impl::run_routes(const std::shared_ptr<const SiteTable>& table, const SiteOptions& site,
                               const http::request_header<>& req, bool https,
                               const std::string& host, const Peer& peer) {
  RouteRequest request;
  request.method = std::string(req.method_string());
  request.target = std::string(req.target());
  request.host = host;
  request.scheme = https ? "https" : "http";
  request.port = https ? https_port_bound : http_port_bound;
  request.remote_ip = peer.ip;
  request.remote_port = peer.port;
  request.version = static_cast<int>(req.version());
  request.headers.reserve(static_cast<std::size_t>(std::distance(req.begin(), req.end())));
  for (const auto& field : req) request.headers.emplace_back(field.name_string(), field.value());
  RouteResult result = evaluate_routes(*site.routes, request);
  if (result.kind != RouteResult::Kind::Proxy) return route_reply(result, req);

  const std::optional<EncodeFormat> coding = accepted_coding(result, req);
  auto relay = std::make_shared<Relay>();
  // Kept alive by the table (its reference, not the proxy's own: see ThreadSites).
  relay->proxy = std::shared_ptr<ReverseProxy>(table, table->proxies.at(result.proxy).get());
  relay->call.target = result.path;
  if (!result.query.empty()) relay->call.target += "?" + result.query;
  const auto& handlers = result.proxy->handle_response;
  if (std::any_of(handlers.begin(), handlers.end(), [](const auto& h) { return !h.status; })) {
    relay->routes_input = std::make_unique<ResponseRoutesInput>(ResponseRoutesInput{request, result});
  }
  relay->call.request = std::move(request);
  if (coding) {  // the upstream knows its own tags, not "abc-gzip" (as for files, see encode.h)
    HeaderFields& fields = relay->call.request.headers;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const auto [name, value] = fields[i];
      if (beast::iequals(name, "If-None-Match") || beast::iequals(name, "If-Match")) {
        fields.set_value(i, strip_encoded_etags(value, coding->name));
      }
    }
  }
  relay->response_headers = std::move(result.response_headers);
  relay->encode = result.encode;
  relay->coding = coding;
  Reply reply;
  reply.relay = std::move(relay);
  reply.user = result.user;
  return reply;
}

// The coding `encode` would use for this client, if an encode handler ran.
std::optional<EncodeFormat> Server::Impl::accepted_coding(const RouteResult& result,
                                                          const http::request_header<>& req) {
  if (!result.encode) return std::nullopt;
  return choose_encoding(*result.encode, {req[http::field::accept_encoding], req[http::field::cache_control],
                                          req.find(http::field::sec_websocket_key) != req.end()});
}

// The reply for what the routes decided, other than reverse_proxy.
Reply Server::Impl::route_reply(const RouteResult& result, const http::request_header<>& req) {
  const std::optional<EncodeFormat> coding = accepted_coding(result, req);
  Reply reply;
  switch (result.kind) {
    case RouteResult::Kind::Empty: reply = text_reply(http::status::ok, "", req.version()); break;
    case RouteResult::Kind::Files: {
      std::string target = result.path;
      if (!result.query.empty()) target += "?" + result.query;
      reply = serve_file(result.files, req, target, coding ? coding->name : std::string_view());
      break;
    }
    case RouteResult::Kind::Respond:
      reply = text_reply(static_cast<http::status>(result.status), result.body, req.version());
      reply.close = result.close;
      break;
    case RouteResult::Kind::Redirect:
      reply = text_reply(static_cast<http::status>(result.status), result.body, req.version());
      reply.head.set(http::field::location, result.location);
      if (result.body.empty()) reply.head.erase(http::field::content_type);
      else reply.head.set(http::field::content_type, "text/html; charset=utf-8");
      break;
    case RouteResult::Kind::Unsupported:
      log(result.unsupported);
      reply = text_reply(http::status::internal_server_error, "", req.version());
      break;
    case RouteResult::Kind::Proxy:
    case RouteResult::Kind::CopyResponse:  // run_routes and relay_head take these
      reply = text_reply(http::status::internal_server_error, "", req.version());
      break;
  }
  apply_header_ops(reply.head, result.response_headers);
  if (result.encode) encode_reply(reply, *result.encode, coding);
  reply.user = result.user;
  return reply;
}

// A `handle_response` block matched the upstream's response: its routes run on the request as
// the proxy saw it. copy_response (Kind::CopyResponse) relays the upstream's response after all,
// with its status and the block's header operations; any other answer replaces it, and the
// upstream's body is left unread (its connection closes). True when the reply is now that answer.
bool Server::Impl::run_response_routes(Reply& reply, const http::request_header<>& req, unsigned version) {
  Relay& relay = *reply.relay;
  ResponseRoutesInput& input = *relay.routes_input;
  input.request.upstream = relay.outcome.upstream_response.get();
  RouteResult result = evaluate_response_routes(relay.outcome.response_routes->routes, input.request, input.proxied);
  if (result.kind == RouteResult::Kind::CopyResponse) {
    if (result.status != 0) relay.outcome.status = result.status;
    relay.response_headers = std::move(result.response_headers);
    relay.encode = result.encode;
    return false;
  }
  Reply answer = route_reply(result, req);
  answer.log = reply.log;
  if (answer.head.result() == http::status::not_modified) answer.head.erase(http::field::content_type);
  answer.head.version(version);
  answer.finish(req.method() == http::verb::head);
  reply = std::move(answer);
  return true;
}

// The `encode` handler on a finished reply: compressed in memory with this thread's encoder
// when Caddy's rules allow it (encode.h), with Content-Encoding, the coding in the ETag, no
// Accept-Ranges, and Vary: Accept-Encoding whenever the response is one that gets encoded. A
// 304 gets the ETag and Vary its 200 would have. Bodies over kMaxEncoded go out as they are.
void Server::Impl::encode_reply(Reply& reply, const EncodeOptions& options,
                                const std::optional<EncodeFormat>& coding) {
  constexpr std::uint64_t kMaxEncoded = 8 * 1024 * 1024;
  const bool not_modified = reply.head.result() == http::status::not_modified;
  EncodeResponse facts;
  facts.status = not_modified ? 200 : reply.head.result_int();
  for (const auto& field : reply.head) facts.headers.emplace_back(field.name_string(), field.value());
  facts.length = not_modified ? reply.file_size : reply.body_length();
  if (!should_encode(options, facts) || facts.length > kMaxEncoded) return;
  if (!vary_lists(reply.head[http::field::vary], "Accept-Encoding")) {
    reply.head.insert(http::field::vary, "Accept-Encoding");
  }
  if (!coding) return;
  if (const std::string_view etag = reply.head[http::field::etag]; !etag.empty()) {
    reply.head.set(http::field::etag, encoded_etag(etag, coding->name));
  }
  if (not_modified) return;
  std::string body;
  if (!read_body(reply, body)) return;
  Encoder& encoder = thread_encoder(*coding);
  std::string compressed;
  encoder.write(body, compressed);
  encoder.finish(compressed);
  encoder.reset();
  reply.pieces.clear();
  reply.pieces.emplace_back(std::move(compressed));
  reply.file.reset();
  reply.head.set(http::field::content_encoding, coding->name);
  reply.head.erase(http::field::accept_ranges);
}

// This thread's encoder for a format and level, made once and reset between responses (zlib
// allocates about 256 KiB for each new stream).
Encoder& Server::Impl::thread_encoder(const EncodeFormat& format) {
  thread_local std::vector<std::pair<EncodeFormat, std::unique_ptr<Encoder>>> encoders;
  for (auto& [f, encoder] : encoders) {
    if (f.name == format.name && f.level == format.level) return *encoder;
  }
  return *encoders.emplace_back(format, make_encoder(format.name, format.level)).second;
}

// Every piece of the body in `out`; false when a file slice cannot be read in full.
bool Server::Impl::read_body(const Reply& reply, std::string& out) {
  for (const auto& piece : reply.pieces) {
    if (const auto* text = std::get_if<std::string>(&piece)) {
      out += *text;
      continue;
    }
    const FileSlice slice = std::get<FileSlice>(piece);
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(slice.length));
    const ssize_t got = ::pread(reply.file->get(), out.data() + at, static_cast<std::size_t>(slice.length),
                                static_cast<off_t>(slice.offset));
    if (got != static_cast<ssize_t>(slice.length)) return false;
  }
  return true;
}

// One line in the site's access log, with Caddy's fields.
void Server::Impl::log_access(const http::request_header<>& req, const Reply& reply,
                              std::chrono::steady_clock::time_point began,
                              std::chrono::steady_clock::time_point ended, const Peer& peer, SSL* ssl) {
  if (!reply.log) return;
  AccessLogEntry entry;
  entry.duration = ended - began;
  // The wall-clock start, read only when a line is written (the steady clock times the request).
  entry.start = std::chrono::system_clock::now() -
                std::chrono::duration_cast<std::chrono::system_clock::duration>(entry.duration);
  entry.remote_ip = peer.ip;
  entry.remote_port = peer.port;
  entry.proto = req.version() == 20 ? "HTTP/2.0" : req.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
  entry.method = std::string(req.method_string());
  entry.host = std::string(req[http::field::host]);
  entry.uri = std::string(req.target());
  for (const auto& field : req) entry.request_headers.emplace_back(field.name_string(), field.value());
  if (ssl) {
    AccessLogEntry::Tls tls;
    tls.resumed = SSL_session_reused(ssl) == 1;
    tls.version = SSL_version(ssl);
    if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl)) tls.cipher_suite = SSL_CIPHER_get_protocol_id(cipher);
    const unsigned char* alpn = nullptr;
    unsigned int alpn_length = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_length);
    if (alpn) tls.proto.assign(reinterpret_cast<const char*>(alpn), alpn_length);
    if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) tls.server_name = name;
    entry.tls = std::move(tls);
  }
  entry.bytes_read = reply.request_body_bytes;
  entry.user_id = reply.user;
  const std::string_view length = reply.field(http::field::content_length);
  entry.size = 0;
  std::from_chars(length.data(), length.data() + length.size(), entry.size);
  entry.status = reply.head.result_int();
  for (const auto& field : reply.head) entry.response_headers.emplace_back(field.name_string(), field.value());
  for (const auto& [name, value] : reply.upstream_fields) entry.response_headers.emplace_back(name, value);
  reply.log->log(entry);
}

void Server::Impl::apply_header_ops(http::response<http::empty_body>& head,
                                    const std::vector<caddyfile::HeaderOp>& ops) {
  using Kind = caddyfile::HeaderOp::Kind;
  for (const caddyfile::HeaderOp& op : ops) {
    switch (op.kind) {
      case Kind::Set: head.set(op.field, op.value); break;
      case Kind::Add: head.insert(op.field, op.value); break;
      case Kind::Default:
        if (head.find(op.field) == head.end()) head.set(op.field, op.value);
        break;
      case Kind::Delete: head.erase(op.field); break;
      case Kind::Replace: break;  // needs the value's text: later
    }
  }
}

Reply Server::Impl::redirect_to_https(const http::request_header<>& req, const std::string& host) {
  Reply reply = text_reply(http::status::permanent_redirect, "", req.version());
  std::string location = "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host);
  if (https_port_bound != 443) location += ":" + std::to_string(https_port_bound);
  location += std::string(req.target());
  reply.head.set(http::field::location, location);
  reply.head.erase(http::field::content_type);
  return reply;
}

// The file server: method, path, preconditions, ranges, precompressed sidecars (file_server.h
// decides; this sends).
// `coding`: what `encode` will compress with, whose suffix comes off the ETags in preconditions.
Reply Server::Impl::serve_file(const FileServerOptions& files, const http::request_header<>& req,
                               std::string_view target, std::string_view coding) {
  const unsigned version = req.version();
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    Reply reply = text_reply(http::status::method_not_allowed, "", version);
    reply.head.set(http::field::allow, "GET, HEAD");
    return reply;
  }
  const std::size_t query = target.find('?');
  const FileTarget found = resolve_file(files, target.substr(0, query));
  switch (found.kind) {
    case FileTarget::Kind::BadRequest: return text_reply(http::status::bad_request, "", version);
    case FileTarget::Kind::NotFound: return text_reply(http::status::not_found, "", version);
    case FileTarget::Kind::Forbidden: return text_reply(http::status::forbidden, "", version);
    case FileTarget::Kind::Redirect: {
      Reply reply = text_reply(http::status::permanent_redirect, "", version);
      std::string location = found.redirect_location;
      if (query != std::string_view::npos) location += target.substr(query);
      reply.head.set(http::field::location, location);
      return reply;
    }
    case FileTarget::Kind::Listing: {
      const std::vector<DirEntry> entries = list_directory(files, found.path);
      const bool json = std::string_view(req[http::field::accept]).find("application/json") != std::string_view::npos;
      Reply reply = text_reply(http::status::ok, json ? browse_json(entries) : browse_html(found.clean_path, entries),
                               version);
      reply.head.set(http::field::content_type, json ? "application/json" : "text/html; charset=utf-8");
      return reply;
    }
    case FileTarget::Kind::File: break;
  }
  return send_file(files, req, found, coding);
}

Reply Server::Impl::send_file(const FileServerOptions& files, const http::request_header<>& req,
                              const FileTarget& found, std::string_view coding) {
  const unsigned version = req.version();
  std::filesystem::path path = found.path;
  std::uintmax_t size = found.size;
  std::filesystem::file_time_type modified = found.modified;
  std::string encoding;
  std::shared_ptr<pki::UniqueFd> file = found.file;
  if (!files.precompressed.empty()) {
    if (auto sidecar = choose_precompressed(files, found.path, req[http::field::accept_encoding])) {
      path = sidecar->path;
      size = sidecar->size;
      modified = sidecar->modified;
      encoding = sidecar->encoding;
      file = sidecar->file;
    }
  }
  if (!file) file = std::make_shared<pki::UniqueFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file->get() < 0) return text_reply(http::status::not_found, "", version);
  const std::string etag = file_etag(modified, size);
  const auto last_modified = useful_mod_time(modified);

  Reply reply;
  reply.head.version(version);
  reply.head.set(http::field::content_type, mime_type(found.path));
  reply.head.set(http::field::etag, etag);
  if (last_modified) reply.head.set(http::field::last_modified, http_date(*last_modified));
  reply.head.set(http::field::accept_ranges, "bytes");
  if (!files.precompressed.empty()) reply.head.set(http::field::vary, "Accept-Encoding");
  if (!encoding.empty()) reply.head.set(http::field::content_encoding, encoding);

  ConditionalHeaders conditional;
  conditional.if_match = req[http::field::if_match];
  conditional.if_none_match = req[http::field::if_none_match];
  if (!coding.empty()) {
    conditional.if_match = strip_encoded_etags(conditional.if_match, coding);
    conditional.if_none_match = strip_encoded_etags(conditional.if_none_match, coding);
  }
  conditional.if_modified_since = req[http::field::if_modified_since];
  conditional.if_unmodified_since = req[http::field::if_unmodified_since];
  switch (evaluate_preconditions(req.method_string(), conditional, etag, last_modified)) {
    case Precondition::NotModified:
      reply.head.result(http::status::not_modified);  // its Content-Type goes in handle()
      reply.file_size = size;
      return reply;
    case Precondition::Failed: return text_reply(http::status::precondition_failed, "", version);
    case Precondition::Proceed: break;
  }
  reply.file = std::move(file);
  const std::string_view range = req[http::field::range];
  const std::string_view if_range = req[http::field::if_range];
  std::optional<std::vector<ByteRange>> ranges;
  if (!range.empty() && (if_range.empty() || if_range_matches(if_range, etag, last_modified))) {
    ranges = parse_range(range, size);
  }
  if (!ranges) {
    reply.head.result(http::status::ok);
    reply.pieces.emplace_back(FileSlice{0, size});
  } else if (ranges->empty()) {
    reply = text_reply(http::status::range_not_satisfiable, "", version);
    reply.head.set(http::field::content_range, "bytes */" + std::to_string(size));
  } else if (ranges->size() == 1) {
    const ByteRange r = ranges->front();
    reply.head.result(http::status::partial_content);
    reply.head.set(http::field::content_range,
                   "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" + std::to_string(size));
    reply.pieces.emplace_back(FileSlice{r.first, r.last - r.first + 1});
  } else {
    const MultipartPlan plan = plan_multipart(*ranges, size, mime_type(found.path));
    reply.head.result(http::status::partial_content);
    reply.head.set(http::field::content_type, plan.content_type);
    for (std::size_t i = 0; i < ranges->size(); ++i) {
      reply.pieces.emplace_back(plan.part_headers[i]);
      reply.pieces.emplace_back(FileSlice{(*ranges)[i].first, (*ranges)[i].last - (*ranges)[i].first + 1});
    }
    reply.pieces.emplace_back(plan.closing);
  }
  return reply;
}

}  // namespace acmetool::serve
