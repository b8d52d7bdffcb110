// example-beast-sync: a socket-activated HTTP/1.1 server on Boost.Beast, in
// Beast's synchronous shape: a thread per connection, http::read_header,
// http::read for the body, and http::write, all blocking.
//
// Under systemd it serves the sockets of its .socket units (named "web" and
// "admin" in the shipped units); started by hand it binds HOST:PORT (default
// 0.0.0.0:3000), SOCKET_PATH, or the addresses given with --listen=LIST.
//   GET /            hello, with the pid and the socket's name
//   GET /delay/<ms>  answers after <ms> milliseconds (its thread sleeps; others go on)
// Targets in absolute form (http://host/path) are routed by their path.
// Beast's parser takes a request whose Transfer-Encoding does not end in
// chunked as bodiless (its body would then run as the next request), and
// lets a missing or repeated Host through: the session refuses these with
// 400 and closes (RFC 9112 §6.3, §3.2), as the other examples do. A body over
// 1 MiB gets 413; Expect: 100-continue gets 100 Continue before the body.
// Accept=yes: serves its one connection and exits when it closes.
// IDLE_TIMEOUT=<s>: when socket-activated, exit after that long without
// requests. SIGTERM/SIGINT: stop accepting, answer what was received, close,
// exit 0 (at most SHUTDOWN_TIMEOUT, default 30 s; a second signal closes all
// at once). HEADERS_TIMEOUT/REQUEST_TIMEOUT: a stuck request gets a 408.
//
// Lines marked `// sockact` are all that sockact adds to a synchronous Beast
// server. Its blocking acceptor.accept() loop goes: a thread blocked in
// accept() cannot be woken when the drain closes the listener, so the
// server would never exit. The thread driver accepts instead
// (driver.serve()), tracks each connection as it accepts it, and calls the
// session on a thread of its own with a sockact::sync_stream in place of the
// tcp::socket: Beast's http::read and http::write take it unchanged, and it
// reports every read, so a request that has begun is never closed as idle.
// The session reports the head and then the whole request, so a slow body is
// bounded by REQUEST_TIMEOUT, not HEADERS_TIMEOUT.
// SPDX-License-Identifier: MIT

#include <sockact/sync_stream.hpp>  // sockact

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <unistd.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <string>
#include <string_view>
#include <thread>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
constexpr const char* program = "example-beast-sync";
constexpr unsigned max_delay_ms = 600000;
constexpr std::uint64_t max_body_bytes = 1024 * 1024;  // a larger body gets 413

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

// The length of "http://" or "https://" (any case) at the start of `target`, else 0.
std::size_t absolute_scheme(std::string_view target) {
  for (const std::string_view scheme : {std::string_view("http://"), std::string_view("https://")})
    if (target.size() >= scheme.size() && iequals(target.substr(0, scheme.size()), scheme))
      return scheme.size();
  return 0;
}

// The path and query of a target: "/p?q" for "/p?q" and for "http://host/p?q"
// (absolute form, RFC 9112 §3.2.2); "" for "http://host" (that is "/").
std::string_view origin_form(std::string_view target) {
  const std::size_t scheme = absolute_scheme(target);
  if (scheme == 0) return target;
  const std::size_t path = target.find_first_of("/?", scheme);
  return path == std::string_view::npos ? std::string_view() : target.substr(path);
}

// Calls f(element) for each element of the comma lists in every `name` field, OWS trimmed.
template <class F>
void each_element(const http::fields& fields, http::field name, F f) {
  const auto [first, last] = fields.equal_range(name);
  for (auto it = first; it != last; ++it) {
    std::string_view list(it->value().data(), it->value().size());
    for (;;) {
      const std::size_t comma = list.find(',');
      std::string_view e = list.substr(0, comma);
      while (!e.empty() && (e.front() == ' ' || e.front() == '\t')) e.remove_prefix(1);
      while (!e.empty() && (e.back() == ' ' || e.back() == '\t')) e.remove_suffix(1);
      f(e);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
}

// What Beast's parser lets through and RFC 9112 does not; ok if nothing.
http::status check_head(const http::request_parser<http::string_body>& parser) {
  const http::request<http::string_body>& h = parser.get();
  if (std::distance(h.begin(), h.end()) > 100) return http::status::request_header_fields_too_large;
  // HTTP/1.1 needs exactly one Host, HTTP/1.0 at most one (§3.2).
  const std::size_t hosts = h.count(http::field::host);
  if (hosts > 1 || (hosts == 0 && h.version() >= 11)) return http::status::bad_request;
  // An absolute-form target names its host (RFC 9110 §4.2: not empty, no userinfo).
  const std::string_view target(h.target().data(), h.target().size());
  if (const std::size_t scheme = absolute_scheme(target)) {
    const std::string_view authority = target.substr(scheme, target.find_first_of("/?", scheme) - scheme);
    if (authority.empty() || authority.find('@') != std::string_view::npos) return http::status::bad_request;
  }
  if (h.count(http::field::transfer_encoding) == 0) return http::status::ok;
  // Transfer-Encoding: in HTTP/1.0 or with Content-Length the framing is in
  // doubt (§6.1); unless chunked is the final coding, and applied once, the
  // body's length is unknown, and Beast would read none (§6.3): 400. Other
  // codings Beast does not undo: 501.
  if (h.version() < 11 || h.count(http::field::content_length) != 0) return http::status::bad_request;
  bool final_chunked = false, other = false;
  int chunked = 0;
  each_element(h, http::field::transfer_encoding, [&](std::string_view coding) {
    if (coding.empty()) return;
    final_chunked = iequals(coding, "chunked");
    chunked += final_chunked ? 1 : 0;
    other = other || !final_chunked;
  });
  if (!final_chunked || chunked != 1) return http::status::bad_request;
  return other ? http::status::not_implemented : http::status::ok;
}

// HTTP/1.1 with Expect: 100-continue: the client waits for 100 Continue before it sends the body.
bool expects_continue(const http::request<http::string_body>& h) {
  bool found = false;
  if (h.version() >= 11)
    each_element(h, http::field::expect,
                 [&](std::string_view e) { found = found || iequals(e, "100-continue"); });
  return found;
}

// What a read error is answered with before the close; ok: nothing (EOF, a reset).
http::status refusal(beast::error_code ec) {
  if (ec == http::error::header_limit) return http::status::request_header_fields_too_large;
  if (ec == http::error::body_limit) return http::status::payload_too_large;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return http::status::ok;
  if (ec.category() == http::make_error_code(http::error::bad_method).category())
    return http::status::bad_request;
  return http::status::ok;
}

/// Where a request goes: "/" or "/delay/<ms>" (GET or HEAD), else 404 (or 400).
struct route {
  http::status status = http::status::not_found;
  unsigned delay_ms = 0;
  bool delay = false;
};

route route_for(const http::request<http::string_body>& req) {
  route r;
  if (req.method() != http::verb::get && req.method() != http::verb::head) return r;
  const std::string_view target = origin_form(std::string_view(req.target().data(), req.target().size()));
  const std::string_view prefix = "/delay/";
  if (target.empty() || target == "/") {
    r.status = http::status::ok;
  } else if (target.substr(0, prefix.size()) == prefix) {
    const std::string_view digits = target.substr(prefix.size());
    unsigned long ms = 0;
    bool ok = !digits.empty() && digits.size() <= 7;
    for (const char c : digits) {
      ok = ok && c >= '0' && c <= '9';
      if (ok) ms = ms * 10 + static_cast<unsigned long>(c - '0');
    }
    r.status = ok && ms <= max_delay_ms ? http::status::ok : http::status::bad_request;
    r.delay = r.status == http::status::ok;
    r.delay_ms = static_cast<unsigned>(ms);
  }
  return r;
}

http::response<http::string_body> response(http::status status, std::string body, bool head) {
  http::response<http::string_body> res(status, 11);
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(body);
  res.prepare_payload();
  if (head) res.body().clear();  // Content-Length stays that of the GET
  return res;
}

/// One connection, on a thread of its own: reads a request (the head, checked
/// before any byte of the body is read, then the body), answers it, reads the
/// next (pipelined ones come from the buffer), until one side closes.
void session(sockact::sync_stream& stream, const std::string& name) {  // sockact
  beast::error_code ec;
  beast::flat_buffer buffer{64 * 1024};
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);  // a larger head gets 431
    parser.body_limit(max_body_bytes);
    http::read_header(stream, buffer, parser, ec);
    http::status bad = ec ? refusal(ec) : check_head(parser);
    if (!ec && bad == http::status::ok && !parser.is_done()) {
      stream.connection()->headers_received();  // sockact
      // A client that waits for it before sending its body, and has not sent any yet.
      if (buffer.size() == 0 && expects_continue(parser.get()))
        http::write(stream, http::response<http::empty_body>(http::status::continue_, 11), ec);
      if (!ec) http::read(stream, buffer, parser, ec);
      if (ec) bad = refusal(ec);
    }
    if (bad != http::status::ok) {  // 400, 413, 431, 501: answer and close
      auto res = response(bad, bad == http::status::bad_request ? "bad request\n" : "", false);
      res.keep_alive(false);
      http::write(stream, res, ec);
      break;
    }
    if (ec) break;                            // EOF, a reset, or closed for us (drain, deadline)
    stream.connection()->request_received();  // sockact
    const http::request<http::string_body>& req = parser.get();
    const route r = route_for(req);
    if (r.delay) std::this_thread::sleep_for(std::chrono::milliseconds(r.delay_ms));
    std::string body = "not found\n";
    if (r.status == http::status::bad_request) body = "bad request\n";
    if (r.status == http::status::ok)
      body = r.delay ? "delayed " + std::to_string(r.delay_ms) + " ms\n"
                     : std::string("hello from ") + program + " pid=" + std::to_string(::getpid()) +
                           " socket=" + name + "\n";
    auto res = response(r.status, std::move(body), req.method() == http::verb::head);
    res.keep_alive(req.keep_alive() && stream.connection()->keep_alive(buffer.size()));  // sockact
    http::write(stream, res, ec);
    if (ec) break;
    stream.connection()->response_sent(buffer.size());  // sockact
    if (!res.keep_alive()) break;
  }
  // FIN after the last response; the library reads and discards what the
  // client still sends, so that it gets no reset.
  stream.close();  // sockact
}

}  // namespace

int main(int argc, char** argv) try {
  std::string address;  // empty: HOST/PORT or SOCKET_PATH
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--listen=", 0) != 0) {
      std::fprintf(stderr, "usage: %s [--listen=ADDRESS[,ADDRESS...]]\n", program);
      return 2;
    }
    address = a.substr(9);
  }
  sockact::activation act = sockact::activate_or_exit(sockact::activation_config::http(address));  // sockact
  // Before any thread starts: it blocks SIGTERM and SIGINT, and the threads inherit that.
  sockact::thread_driver driver(act);  // sockact
  // Accepts on every socket; each connection gets a thread of its own.
  const bool drained =
      driver.serve([](sockact::sync_stream stream, const sockact::server_socket& from) {  // sockact
        session(stream, from.name);
      });
  // The drain was cut (SHUTDOWN_TIMEOUT, a second signal): end now, the kernel closes what is left.
  if (!drained) std::_Exit(0);  // sockact
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s: %s\n", program, e.what());
  return 1;
}
