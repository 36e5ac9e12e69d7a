// The rfc2136 provider: RFC 2136 dynamic updates, signed with TSIG (RFC 8945), as lego's rfc2136
// provider sends them. ldns builds and parses the messages; the TSIG MACs are ours (OpenSSL HMAC),
// for two reasons: ldns 1.8.3 cannot sign with hmac-sha384 (its table spells it "hmac-shac384."),
// and its resolver drops an answer whose TSIG does not verify, rcode and all, while that answer
// (NOTAUTH with TSIG error BADSIG or BADKEY) is exactly what the user needs to hear about.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <stdexcept>

#include "acmetool/acme/error.h"
#include "acmetool/acme/jws.h"
#include "acmetool/pki/error.h"
#include "acmetool/pki/ossl.h"
#include "dns_providers_internal.h"
#include "dns_wire_internal.h"

namespace acmetool::acme::detail {
namespace {

using std::chrono::milliseconds;
using BufferPtr = std::unique_ptr<ldns_buffer, pki::CFree<&ldns_buffer_free>>;
using BytesPtr = std::unique_ptr<uint8_t, pki::CFree<&std::free>>;
using PacketPtr = LdnsPacketPtr;
using RdfPtr = LdnsRdfPtr;
using RrPtr = std::unique_ptr<ldns_rr, pki::CFree<&ldns_rr_free>>;
using RrListPtr = std::unique_ptr<ldns_rr_list, pki::CFree<&ldns_rr_list_deep_free>>;

constexpr const char* kName = "rfc2136";
constexpr milliseconds kDefaultTimeout = std::chrono::seconds(10);  // lego's RFC2136_DNS_TIMEOUT
constexpr uint16_t kFudge = 300;                                    // seconds; RFC 8945 §10
constexpr uint16_t kTypeTsig = 250, kClassAny = 255;
constexpr std::size_t kHeaderSize = 12;

// ---- Configuration ----

// A TSIG key as both ends know it.
struct TsigKey {
  std::string name;            // "acmetool-test-key." (absolute, lower case)
  std::string name_wire;       // canonical wire form of name
  std::string algorithm;       // "hmac-sha256."
  std::string algorithm_wire;  // canonical wire form of algorithm
  const EVP_MD* digest = nullptr;
  pki::SecretString secret;  // the raw key bytes
};

// Where updates go: an IPv4 or IPv6 address and port.
struct Endpoint {
  sockaddr_storage address{};
  socklen_t size = 0;
  std::string text;  // "127.0.0.1:53"
};

struct Config {
  Endpoint nameserver;
  std::optional<TsigKey> key;
  milliseconds timeout = kDefaultTimeout;
};

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// The uncompressed, lower-case wire form of a domain name (RFC 8945 §4.3.3 digests names so).
std::string name_wire(const std::string& name) {
  const RdfPtr rdf(ldns_dname_new_frm_str(name.c_str()));
  if (!rdf) throw Error(std::string(kName) + ": '" + name + "' is not a DNS name");
  ldns_dname2canonical(rdf.get());
  return std::string(reinterpret_cast<const char*>(ldns_rdf_data(rdf.get())),
                     ldns_rdf_size(rdf.get()));
}

// "IP" or "IP:PORT" ("[IPv6]:PORT"), port 53 when none is given, as a socket address.
Endpoint parse_nameserver(const std::string& text) {
  DnsServerAddress server;
  try {
    server = parse_dns_server(text, 53);
  } catch (const Error&) {
    throw Error(std::string(kName) + ": nameserver '" + text +
                "' is not IP or IP:PORT (--dns-opt nameserver= or RFC2136_NAMESERVER)");
  }
  Endpoint endpoint;
  endpoint.text = server.text();
  auto* v4 = reinterpret_cast<sockaddr_in*>(&endpoint.address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&endpoint.address);
  if (server.v6) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(server.port));
    inet_pton(AF_INET6, server.ip.c_str(), &v6->sin6_addr);
    endpoint.size = sizeof(sockaddr_in6);
  } else {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(server.port));
    inet_pton(AF_INET, server.ip.c_str(), &v4->sin_addr);
    endpoint.size = sizeof(sockaddr_in);
  }
  return endpoint;
}

// lego's names, with or without the trailing dot lego accepts; hmac-md5 is refused (RFC 8945 §6).
const EVP_MD* digest_of(const std::string& algorithm) {
  if (algorithm == "hmac-sha1") return EVP_sha1();
  if (algorithm == "hmac-sha224") return EVP_sha224();
  if (algorithm == "hmac-sha256") return EVP_sha256();
  if (algorithm == "hmac-sha384") return EVP_sha384();
  if (algorithm == "hmac-sha512") return EVP_sha512();
  const std::string where = " (--dns-opt tsig_algorithm= or RFC2136_TSIG_ALGORITHM)";
  if (algorithm.starts_with("hmac-md5")) {
    throw Error(std::string(kName) +
                ": tsig_algorithm hmac-md5 is not supported, it is broken: use hmac-sha256" +
                where);
  }
  throw Error(std::string(kName) + ": unknown tsig_algorithm '" + algorithm +
              "': use hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512" + where);
}

// A standard base64 secret (what tsig-keygen writes) as bytes.
pki::SecretString decode_secret(std::string text) {
  std::replace(text.begin(), text.end(), '+', '-');
  std::replace(text.begin(), text.end(), '/', '_');
  while (text.ends_with('=')) text.pop_back();
  std::optional<std::string> bytes = base64url_decode(text);
  OPENSSL_cleanse(text.data(), text.size());
  if (!bytes || bytes->empty()) {
    throw Error(std::string(kName) +
                ": tsig_secret is not base64 (--dns-opt tsig_secret= or RFC2136_TSIG_SECRET)");
  }
  return pki::SecretString(std::move(*bytes));
}

std::optional<TsigKey> read_key(const DnsProviderSettings& settings) {
  const auto name = option_or_env(settings, "tsig_key", "RFC2136_TSIG_KEY");
  auto secret = option_or_env(settings, "tsig_secret", "RFC2136_TSIG_SECRET");
  if (!name && !secret) return std::nullopt;  // unsigned updates, for servers that allow them
  if (!secret) {
    throw Error(std::string(kName) +
                ": option \"tsig_key\" needs \"tsig_secret\" too (--dns-opt tsig_secret=... or "
                "RFC2136_TSIG_SECRET)");
  }
  if (!name) {
    throw Error(std::string(kName) +
                ": option \"tsig_secret\" needs \"tsig_key\" too (--dns-opt tsig_key=... or "
                "RFC2136_TSIG_KEY)");
  }
  std::string algorithm = lower(
      option_or_env(settings, "tsig_algorithm", "RFC2136_TSIG_ALGORITHM").value_or("hmac-sha256"));
  if (algorithm.ends_with('.')) algorithm.pop_back();
  TsigKey key;
  key.digest = digest_of(algorithm);
  key.name = lower(name->ends_with('.') ? *name : *name + ".");
  key.name_wire = name_wire(key.name);
  key.algorithm = algorithm + ".";
  key.algorithm_wire = name_wire(key.algorithm);
  key.secret = decode_secret(std::move(*secret));
  return key;
}

// RFC2136_DNS_TIMEOUT is whole seconds in lego; "10s" is accepted too.
milliseconds read_timeout(const DnsProviderSettings& settings) {
  std::optional<std::string> text = option_or_env(settings, "timeout", "RFC2136_DNS_TIMEOUT");
  if (!text) return kDefaultTimeout;
  std::string digits = *text;
  if (digits.ends_with('s')) digits.pop_back();
  char* end = nullptr;
  const long seconds = std::strtol(digits.c_str(), &end, 10);
  if (digits.empty() || *end != '\0' || seconds < 1 || seconds > 3600) {
    throw Error(
        std::string(kName) + ": timeout '" + *text +
        "' is not a number of seconds from 1 to 3600 (--dns-opt timeout= or RFC2136_DNS_TIMEOUT)");
  }
  return std::chrono::seconds(seconds);
}

// ---- Wire format ----

void put16(std::string& out, unsigned value) {
  out += static_cast<char>(value >> 8 & 0xff);
  out += static_cast<char>(value & 0xff);
}

void put32(std::string& out, uint32_t value) {
  put16(out, value >> 16);
  put16(out, value & 0xffff);
}

unsigned get16(std::string_view wire, std::size_t at) {
  return static_cast<unsigned char>(wire[at]) << 8 | static_cast<unsigned char>(wire[at + 1]);
}

void set16(std::string& wire, std::size_t at, unsigned value) {
  wire[at] = static_cast<char>(value >> 8 & 0xff);
  wire[at + 1] = static_cast<char>(value & 0xff);
}

std::string bytes_of(const ldns_rdf* rdf) {
  return std::string(reinterpret_cast<const char*>(ldns_rdf_data(rdf)), ldns_rdf_size(rdf));
}

// The offset just past the (possibly compressed) name at `at`.
std::size_t skip_name(std::string_view wire, std::size_t at) {
  while (at < wire.size()) {
    const unsigned length = static_cast<unsigned char>(wire[at]);
    if ((length & 0xc0) == 0xc0) return at + 2;
    if (length == 0) return at + 1;
    at += 1 + length;
  }
  throw std::out_of_range("name");
}

// Where the last resource record of a message starts: a TSIG is always last (RFC 8945 §5.1).
std::size_t last_record_at(std::string_view wire) {
  std::size_t at = kHeaderSize;
  for (unsigned i = 0; i < get16(wire, 4); ++i) at = skip_name(wire, at) + 4;
  const unsigned records = get16(wire, 6) + get16(wire, 8) + get16(wire, 10);
  for (unsigned i = 0; i + 1 < records; ++i) {
    at = skip_name(wire, at) + 8;
    if (at + 2 > wire.size()) throw std::out_of_range("record");
    at += 2 + get16(wire, at);
  }
  if (records == 0 || at >= wire.size()) throw std::out_of_range("message");
  return at;
}

// ---- TSIG (RFC 8945) ----

std::string hmac(const TsigKey& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  const std::string& secret = key.secret.str();
  if (!HMAC(key.digest, secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &size)) {
    throw pki::CryptoError("computing a TSIG MAC with " + key.algorithm);
  }
  return std::string(reinterpret_cast<const char*>(mac), size);
}

// The TSIG variables a MAC covers after the message (§4.3.3): key name, class, TTL, algorithm,
// then the time signed and fudge, and the error and other data, in wire form.
std::string tsig_variables(const TsigKey& key, const std::string& time_and_fudge,
                           const std::string& error_and_other) {
  std::string variables = key.name_wire;
  put16(variables, kClassAny);
  put32(variables, 0);
  return variables + key.algorithm_wire + time_and_fudge + error_and_other;
}

// Appends a TSIG RR to `message` (§4.2, §5.1), counted in ARCOUNT; returns the request MAC,
// which the answer's MAC covers in turn.
std::string sign(std::string& message, const TsigKey& key) {
  std::string time_and_fudge;
  const auto now = static_cast<uint64_t>(std::time(nullptr));
  put16(time_and_fudge, static_cast<unsigned>(now >> 32 & 0xffff));
  put32(time_and_fudge, static_cast<uint32_t>(now));
  put16(time_and_fudge, kFudge);
  const std::string error_and_other(4, '\0');  // error 0, no other data
  const std::string mac = hmac(key, message + tsig_variables(key, time_and_fudge, error_and_other));
  std::string rdata = key.algorithm_wire + time_and_fudge;
  put16(rdata, static_cast<unsigned>(mac.size()));
  rdata += mac + message.substr(0, 2) + error_and_other;  // original ID = the message's ID
  std::string record = key.name_wire;
  put16(record, kTypeTsig);
  put16(record, kClassAny);
  put32(record, 0);
  put16(record, static_cast<unsigned>(rdata.size()));
  message += record + rdata;
  set16(message, 10, get16(message, 10) + 1);
  return mac;
}

// Whether `answer` (parsed from `wire`) carries a valid TSIG of `key` over `request_mac` (§5.3):
// the MAC covers the request MAC, the answer as it was before signing (original ID, without the
// TSIG RR) and the answer's TSIG variables; the time signed is within the fudge of ours.
bool verify(const ldns_pkt& answer, std::string_view wire, const TsigKey& key,
            const std::string& request_mac) {
  const ldns_rr* tsig = ldns_pkt_tsig(&answer);
  if (!tsig || ldns_rr_rd_count(tsig) != 7) return false;
  if (lower(bytes_of(ldns_rr_owner(tsig))) != key.name_wire) return false;
  if (lower(bytes_of(ldns_rr_rdf(tsig, 0))) != key.algorithm_wire) return false;
  const std::string time_and_fudge =
      bytes_of(ldns_rr_rdf(tsig, 1)) + bytes_of(ldns_rr_rdf(tsig, 2));
  const std::string mac_field = bytes_of(ldns_rr_rdf(tsig, 3));  // length, then the MAC
  std::string unsigned_answer(wire.substr(0, last_record_at(wire)));
  set16(unsigned_answer, 0, get16(bytes_of(ldns_rr_rdf(tsig, 4)), 0));
  set16(unsigned_answer, 10, get16(unsigned_answer, 10) - 1);
  std::string data;
  put16(data, static_cast<unsigned>(request_mac.size()));
  data += request_mac + unsigned_answer;
  data += tsig_variables(key, time_and_fudge,
                         bytes_of(ldns_rr_rdf(tsig, 5)) + bytes_of(ldns_rr_rdf(tsig, 6)));
  const std::string mac = hmac(key, data);
  const uint64_t signed_at = uint64_t{get16(time_and_fudge, 0)} << 32 |
                             uint64_t{get16(time_and_fudge, 2)} << 16 | get16(time_and_fudge, 4);
  const auto now = static_cast<uint64_t>(std::time(nullptr));
  const uint64_t skew = now > signed_at ? now - signed_at : signed_at - now;
  return mac_field.size() == mac.size() + 2 &&
         CRYPTO_memcmp(mac_field.data() + 2, mac.data(), mac.size()) == 0 &&
         skew <= get16(time_and_fudge, 6);
}

// ---- Updates ----

// The TXT RR of `record`: to add (class IN, its TTL), or to delete exactly this RR (class NONE,
// TTL 0: RFC 2136 §2.5.4). Values over 255 bytes become several character-strings.
RrPtr txt_record(const TxtRecord& record, bool add) {
  RrPtr rr(ldns_rr_new());
  RdfPtr owner(ldns_dname_new_frm_str(record.fqdn.c_str()));
  if (!rr || !owner) throw DnsError(kName, record.zone, "'" + record.fqdn + "' is not a DNS name");
  ldns_rr_set_owner(rr.get(), owner.release());
  ldns_rr_set_type(rr.get(), LDNS_RR_TYPE_TXT);
  ldns_rr_set_class(rr.get(), add ? LDNS_RR_CLASS_IN : LDNS_RR_CLASS_NONE);
  const auto ttl = std::clamp<int64_t>(record.ttl.count(), 0, INT32_MAX);
  ldns_rr_set_ttl(rr.get(), add ? static_cast<uint32_t>(ttl) : 0);
  std::size_t at = 0;
  do {
    const std::string chunk = record.value.substr(at, 255);
    const std::string data = static_cast<char>(chunk.size()) + chunk;
    ldns_rr_push_rdf(rr.get(), ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, data.size(), data.data()));
    at += 255;
  } while (at < record.value.size());
  return rr;
}

// The wire form of an UPDATE of `record.zone` (RFC 2136 §2) adding or deleting `record`.
std::string update_message(const TxtRecord& record, bool add, uint16_t id) {
  RdfPtr zone(ldns_dname_new_frm_str(record.zone.c_str()));
  const RrListPtr updates(ldns_rr_list_new());
  if (!zone || !updates) {
    throw DnsError(kName, record.zone, "'" + record.zone + "' is not a DNS name");
  }
  ldns_rr_list_push_rr(updates.get(), txt_record(record, add).release());
  // Takes the zone name; copies the lists.
  const PacketPtr update(
      ldns_update_pkt_new(zone.release(), LDNS_RR_CLASS_IN, nullptr, updates.get(), nullptr));
  if (!update) throw DnsError(kName, record.zone, "building an update");
  ldns_pkt_set_id(update.get(), id);
  ldns_pkt_set_rd(update.get(), false);  // ldns sets RD; in an UPDATE that bit is reserved (§2.2)
  uint8_t* raw = nullptr;
  std::size_t size = 0;
  const ldns_status status = ldns_pkt2wire(&raw, update.get(), &size);
  const BytesPtr wire(raw);
  if (status != LDNS_STATUS_OK) throw DnsError(kName, record.zone, ldns_get_errorstr_by_id(status));
  return std::string(reinterpret_cast<const char*>(wire.get()), size);
}

// Sends `message` over UDP, or `tcp`; the answer's bytes, or nullopt with `error` set.
std::optional<std::string> send_once(const std::string& message, const Endpoint& to,
                                     milliseconds timeout, bool tcp, std::string& error) {
  const BufferPtr buffer(ldns_buffer_new(message.size()));
  if (!buffer) throw std::bad_alloc();
  ldns_buffer_write(buffer.get(), message.data(), message.size());
  const long ms = std::max<long>(1, static_cast<long>(timeout.count()));
  const timeval limit{ms / 1000, (ms % 1000) * 1000};
  uint8_t* raw = nullptr;
  std::size_t size = 0;
  errno = 0;
  const ldns_status status =
      tcp ? ldns_tcp_send(&raw, buffer.get(), &to.address, to.size, limit, &size)
          : ldns_udp_send(&raw, buffer.get(), &to.address, to.size, limit, &size);
  const int send_errno = errno;
  const BytesPtr answer(raw);
  if (status != LDNS_STATUS_OK || !answer || size < kHeaderSize) {
    // ldns reports a timeout as a "network error" and a refused connection as a "general
    // error"; errno has the details of the latter.
    error = std::string(tcp ? "TCP: " : "UDP: ") +
            (status == LDNS_STATUS_NETWORK_ERR || send_errno == 0
                 ? "no answer within " + std::to_string(ms) + " ms"
                 : std::string(std::strerror(send_errno)));
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(answer.get()), size);
}

// Over UDP, again over TCP when the answer is truncated (RFC 1035 §4.2.1) or does not come.
std::optional<std::string> exchange(const std::string& message, const Endpoint& to,
                                    milliseconds timeout, std::string& error) {
  std::optional<std::string> answer = send_once(message, to, timeout, /*tcp=*/false, error);
  if (answer && (get16(*answer, 2) & 0x0200) == 0) return answer;  // TC clear
  std::string tcp_error;
  answer = send_once(message, to, timeout, /*tcp=*/true, tcp_error);
  if (!answer) error += (error.empty() ? "" : ", ") + tcp_error;
  return answer;
}

uint16_t random_id() {
  uint16_t id = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) != 1) {
    throw pki::CryptoError("generating a DNS message ID");
  }
  return id;
}

// "BADSIG" for TSIG error 16 (RFC 8945 §3).
std::string tsig_error_name(unsigned error) {
  switch (error) {
    case 16:
      return "BADSIG";
    case 17:
      return "BADKEY";
    case 18:
      return "BADTIME";
    case 22:
      return "BADTRUNC";
    default:
      return "TSIG error " + std::to_string(error);
  }
}

class Rfc2136Provider final : public DnsProvider {
 public:
  explicit Rfc2136Provider(Config config) : config_(std::move(config)) {}

  std::string_view name() const override { return kName; }
  void present(const TxtRecord& record) override { update(record, /*add=*/true); }
  void cleanup(const TxtRecord& record) override { update(record, /*add=*/false); }

 private:
  // One UPDATE, signed when a key is configured; throws DnsError unless the server applied it.
  void update(const TxtRecord& record, bool add) const {
    const std::string what = std::string("update ") + (add ? "adding" : "deleting") + " TXT \"" +
                             record.value + "\" at " + record.fqdn + " (via " +
                             config_.nameserver.text + ")";
    const uint16_t id = random_id();
    std::string message = update_message(record, add, id);
    const std::string request_mac = config_.key ? sign(message, *config_.key) : "";
    std::string error;
    const std::optional<std::string> wire =
        exchange(message, config_.nameserver, config_.timeout, error);
    if (!wire) throw DnsError(kName, record.zone, what + ": " + error);
    ldns_pkt* raw = nullptr;
    const ldns_status status =
        ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(wire->data()), wire->size());
    const PacketPtr answer(raw);
    if (status != LDNS_STATUS_OK || ldns_pkt_id(answer.get()) != id) {
      throw DnsError(kName, record.zone,
                     what + ": the answer does not parse or answers another message");
    }
    check(*answer, *wire, record, what, request_mac);
  }

  // The rcode must be NOERROR and, for a signed update, the answer signed with our key (§5.3).
  void check(const ldns_pkt& answer, std::string_view wire, const TxtRecord& record,
             const std::string& what, const std::string& request_mac) const {
    const ldns_pkt_rcode rcode = ldns_pkt_get_rcode(&answer);
    if (rcode != LDNS_RCODE_NOERROR) {
      throw DnsError(kName, record.zone, what + " refused: " + refusal(answer, record));
    }
    bool verified = !config_.key;
    try {
      verified = verified || verify(answer, wire, *config_.key, request_mac);
    } catch (const std::out_of_range&) {
      verified = false;
    }
    if (!verified) {
      throw DnsError(kName, record.zone,
                     what + ": the answer is not signed with tsig_key " + config_.key->name +
                         " (is another server answering at that address?)");
    }
  }

  // "NOTAUTH, TSIG error BADSIG (bad TSIG signature: wrong tsig_secret or tsig_algorithm?)".
  std::string refusal(const ldns_pkt& answer, const TxtRecord& record) const {
    const std::unique_ptr<char, pki::CFree<&std::free>> rcode_text(
        ldns_pkt_rcode2str(ldns_pkt_get_rcode(&answer)));
    std::string text = rcode_text ? rcode_text.get() : "?";
    const ldns_rr* tsig = ldns_pkt_tsig(&answer);
    const unsigned error =
        tsig && ldns_rr_rd_count(tsig) == 7 ? get16(bytes_of(ldns_rr_rdf(tsig, 5)), 0) : 0;
    if (error != 0) text += ", TSIG error " + tsig_error_name(error);
    const std::string why = hint(ldns_pkt_get_rcode(&answer), error, record);
    return why.empty() ? text : text + " (" + why + ")";
  }

  // What probably went wrong, for the refusals a configuration causes.
  std::string hint(ldns_pkt_rcode rcode, unsigned tsig_error, const TxtRecord& record) const {
    const std::string key = config_.key ? config_.key->name : "";
    switch (tsig_error) {
      case 16:
        return "bad TSIG signature: wrong tsig_secret or tsig_algorithm?";
      case 17:
        return "the server does not know tsig_key " + key + " with this tsig_algorithm";
      case 18:
        return "the clocks of this machine and the server differ by over 5 minutes";
    }
    switch (rcode) {
      case LDNS_RCODE_REFUSED:
        return config_.key ? "does the zone allow updates with tsig_key " + key + "?"
                           : "unsigned update: set tsig_key and tsig_secret?";
      case LDNS_RCODE_NOTAUTH:
        return "the server is not authoritative for " + record.zone;
      case LDNS_RCODE_NOTZONE:
        return record.fqdn + " is not in zone " + record.zone;
      default:
        return "";
    }
  }

  Config config_;
};

}  // namespace

std::unique_ptr<DnsProvider> make_rfc2136_provider(const DnsProviderSettings& settings) {
  const std::optional<std::string> nameserver =
      option_or_env(settings, "nameserver", "RFC2136_NAMESERVER");
  if (!nameserver) {
    throw Error(
        std::string(kName) +
        ": missing option \"nameserver\" (--dns-opt nameserver=IP[:PORT] or RFC2136_NAMESERVER)");
  }
  Config config;
  config.nameserver = parse_nameserver(*nameserver);
  config.key = read_key(settings);
  config.timeout = read_timeout(settings);
  return std::make_unique<Rfc2136Provider>(std::move(config));
}

}  // namespace acmetool::acme::detail
