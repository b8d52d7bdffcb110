// beast_http: what both Beast examples (example-beast-http, asynchronous;
// example-beast-sync, blocking) check and route, written once. Beast's own
// parser lets through a Transfer-Encoding whose last coding is not chunked
// (the body would then run as the next request), a missing or repeated Host
// and an absolute-form target with userinfo; check_head() refuses them as
// RFC 9112 says. route_for() routes `/` and `/delay/<ms>` as the other
// examples do (examples/common/mini_http.hpp), absolute-form targets by
// their path.
// SPDX-License-Identifier: MIT
#ifndef EXAMPLES_COMMON_BEAST_HTTP_HPP
#define EXAMPLES_COMMON_BEAST_HTTP_HPP

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstddef>
#include <iterator>
#include <string_view>

namespace beast_http {

namespace beast = boost::beast;
namespace http = beast::http;

/// The longest /delay/<ms> the examples wait.
inline constexpr unsigned max_delay_ms = 600000;

inline bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

// The length of "http://" or "https://" (any case) at the start of `target`, else 0.
inline std::size_t absolute_scheme(std::string_view target) {
  for (const std::string_view scheme : {std::string_view("http://"), std::string_view("https://")})
    if (target.size() >= scheme.size() && iequals(target.substr(0, scheme.size()), scheme))
      return scheme.size();
  return 0;
}

// The path and query of a target: "/p?q" for "/p?q" and for "http://host/p?q"
// (absolute form, RFC 9112 §3.2.2); "" for "http://host" (that is "/").
inline std::string_view origin_form(std::string_view target) {
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
inline http::status check_head(const http::request_parser<http::string_body>& parser) {
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
inline bool expects_continue(const http::request<http::string_body>& h) {
  bool found = false;
  if (h.version() >= 11)
    each_element(h, http::field::expect,
                 [&](std::string_view e) { found = found || iequals(e, "100-continue"); });
  return found;
}

/// Where a request goes: "/" or "/delay/<ms>" (GET or HEAD), else 404 (or 400).
struct route {
  http::status status = http::status::not_found;
  unsigned delay_ms = 0;
  bool delay = false;
};

inline route route_for(const http::request<http::string_body>& req) {
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

}  // namespace beast_http

#endif  // EXAMPLES_COMMON_BEAST_HTTP_HPP
