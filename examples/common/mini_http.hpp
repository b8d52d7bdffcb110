// mini_http: the small piece of HTTP/1.1 the sockact examples share: an
// incremental request-head parser for servers that face hostile clients, a
// read buffer that stays linear on pipelined input, routing and responses.
// Not a general HTTP library; it is here so that each example shows its event
// loop and the sockact calls, not a parser. SPDX-License-Identifier: MIT
//
// What the parser accepts (RFC 9112 / RFC 9110), and what it answers instead:
//   * Lines end in CRLF. A bare LF, a bare CR, a control byte in the head,
//     whitespace before a field's colon, or an obs-fold line: 400.
//   * Empty lines before a request line are skipped (RFC 9112 §2.2); they
//     count towards the header limit, and they count as a started request.
//   * HTTP/1.0 and HTTP/1.1. HTTP/1.2..1.9 are served as HTTP/1.1 (RFC 9110
//     §2.5). Another major version: 505. Not "HTTP/d.d": 400.
//   * The request target in origin form ("/path?query") or in absolute form
//     ("http://host:port/path?query", RFC 9112 §3.2.2): its authority is then
//     the request's host, and origin_form() gives "/path?query" for routing.
//     An absolute-form http(s) target with an empty host or with userinfo
//     ("user@host", RFC 9110 §4.2.4): 400.
//   * HTTP/1.1 needs exactly one Host field; HTTP/1.0 at most one. Else 400.
//   * Content-Length: digits only. Repeated fields, or a comma list, whose
//     values are all equal are collapsed to one (RFC 9110 §8.6); different
//     values: 400. Over max_body_bytes: 413 (a value too large is answered
//     413 as soon as its field is read, even if a later field conflicts).
//   * Transfer-Encoding: these servers do not implement chunked bodies. With
//     Content-Length, or in an HTTP/1.0 request: 400 (RFC 9112 §6.1, §6.3).
//     Once the head ends: a final coding that is not chunked ("gzip",
//     "chunked, identity", "xchunked"), or chunked twice, leaves the body's
//     length unknown, so 400 (RFC 9112 §6.3: taking it as bodiless would run
//     the body as the next request); otherwise 501 Not Implemented (§6.1).
//   * Expect: 100-continue in HTTP/1.1: once the head is in and none of the
//     body, result::send_continue says to send continue_response() (once),
//     so that the client sends its body at once (RFC 9110 §10.1.1). Other
//     expectations are ignored.
//   * A head over max_header_bytes, or over max_header_count fields: 431.
//   * Every error is final for the connection: answer error_response(status),
//     which carries Connection: close, and read nothing more from it.
// Checks run line by line, in order, so the first problem decides the status
// however the bytes were split into reads.
//
// A server's loop, per connection (in: input_buffer, parser: request_parser):
//   readable: while in.size() < limits.max_request_bytes() and the unsent
//             output is under its cap: read into in.prepare(n), in.commit(got).
//   then:     loop { r = parser.parse(in.unread(), req);
//                    complete -> in.consume(r.consumed), answer(req, ..., draining);
//                                stop here while output is over its cap
//                    error    -> send error_response(r.status), close after it
//                    else     -> send continue_response() if r.send_continue,
//                                arm HEADERS_TIMEOUT if partial_head, stop }
#ifndef SOCKACT_EXAMPLES_MINI_HTTP_HPP
#define SOCKACT_EXAMPLES_MINI_HTTP_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace mini_http {

/// What one request may hold. The defaults suit the examples.
struct limits {
  std::size_t max_header_bytes = 8 * 1024;   ///< request line, fields and the blank line
  std::size_t max_header_count = 100;        ///< header fields
  std::size_t max_body_bytes = 1024 * 1024;  ///< Content-Length
  /// No request is longer: when this much is unread, parse() never says
  /// "incomplete", so a server may stop reading at this size (backpressure).
  constexpr std::size_t max_request_bytes() const noexcept { return max_header_bytes + max_body_bytes; }
};

inline constexpr unsigned max_delay_ms = 600000;

/// The <ms> of /delay/<ms>: decimal digits only (at most 7), 0 to
/// max_delay_ms. False (and `ms` unchanged) for anything else.
inline bool parse_delay_ms(std::string_view digits, unsigned& ms) noexcept {
  if (digits.empty() || digits.size() > 7) return false;
  unsigned long n = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<unsigned long>(c - '0');
  }
  if (n > max_delay_ms) return false;
  ms = static_cast<unsigned>(n);
  return true;
}

struct request {
  std::string method;
  std::string target;      ///< as sent; origin_form(target) for routing
  std::string host;        ///< the authority of an absolute-form target, else the Host field
  int version_minor = 1;   ///< 0 for HTTP/1.0, 1 for HTTP/1.1 (and 1.2..1.9)
  bool keep_alive = true;  ///< from the version and the Connection field
  std::size_t content_length = 0;
  std::size_t head_length = 0;  ///< bytes up to and including the blank line
};

/// Where the request at the front of the input stands.
enum class progress {
  empty,         ///< no byte of a request yet: the connection is idle
  partial_head,  ///< started, head not complete: HEADERS_TIMEOUT applies
  partial_body,  ///< head complete and valid, body not all here yet
  complete,      ///< a whole request: see result::consumed
  error          ///< answer error_response(result::status) and close
};

struct result {
  progress state = progress::empty;
  std::size_t consumed = 0;  ///< complete: head plus body bytes; else 0
  int status = 0;            ///< error: 400, 413, 431, 501 or 505; else 0
  /// partial_body: the client waits for an interim "100 Continue" before it
  /// sends the body; send continue_response() now. Set once per request.
  bool send_continue = false;

  bool complete() const noexcept { return state == progress::complete; }
  bool failed() const noexcept { return state == progress::error; }
  /// Needs more bytes (empty, partial_head or partial_body).
  bool incomplete() const noexcept { return !complete() && !failed(); }
  /// Some bytes of the current request have arrived.
  bool started() const noexcept { return state != progress::empty; }
  /// The head has arrived whole (the body may still be on its way).
  bool head_complete() const noexcept {
    return state == progress::partial_body || state == progress::complete;
  }
};

/// An incremental parser for one connection's requests.
///
/// Call parse() with the unread input, which starts at the first byte of the
/// current request. While it returns an incomplete state, each next call must
/// pass the same bytes plus whatever arrived since (the buffer may move); the
/// parser resumes where it stopped, so every byte is examined a bounded
/// number of times. On complete it fills `out` and gets ready for the next
/// request: the caller drops result::consumed bytes, then calls again. An
/// error is sticky until reset().
/// @code
///   mini_http::request req;
///   const mini_http::result r = parser.parse(in.unread(), req);
///   if (r.complete()) in.consume(r.consumed);
/// @endcode
class request_parser {
 public:
  request_parser() = default;
  explicit request_parser(const limits& lim) noexcept : limits_(lim) {}

  result parse(std::string_view input, request& out);
  /// Forgets the current request and any error (a new connection).
  void reset() noexcept;
  /// Bytes examined since construction: the work done, for linear-time tests.
  std::uint64_t bytes_examined() const noexcept { return examined_; }
  const limits& config() const noexcept { return limits_; }

 private:
  int request_line(std::string_view line);
  int absolute_form(std::string_view target);
  int field_line(std::string_view line);
  void transfer_coding(std::string_view value);
  int content_length(std::string_view value);
  int finish_head() noexcept;
  void next_request() noexcept;
  result fail(int status) noexcept;

  limits limits_;
  request req_;
  std::size_t line_start_ = 0;   // first byte of the line being read
  std::size_t searched_ = 0;     // bytes already searched for '\n'
  std::size_t head_length_ = 0;  // non-zero once the blank line is in
  std::size_t fields_ = 0;
  bool have_request_line_ = false;
  bool have_length_ = false;
  bool have_encoding_ = false;
  bool final_chunked_ = false;  // the last transfer coding so far is chunked
  unsigned chunked_count_ = 0;  // how often chunked was applied
  bool have_host_ = false;
  bool absolute_form_ = false;  // the host came with the target
  bool expect_continue_ = false;
  bool continue_sent_ = false;
  bool close_token_ = false;
  bool keep_alive_token_ = false;
  int error_ = 0;
  std::uint64_t examined_ = 0;
};

/// A connection's unread input: read into prepare()/commit() (or append()),
/// parse unread(), drop what was parsed with consume(). Space is reclaimed by
/// moving the unread tail to the front only when the consumed prefix is at
/// least as long as that tail, so on N pipelined requests the copying stays
/// O(total bytes) instead of one erase-from-the-front per request.
class input_buffer {
 public:
  input_buffer() = default;
  input_buffer(input_buffer&& other) noexcept { swap(other); }
  input_buffer& operator=(input_buffer&& other) noexcept {
    input_buffer(std::move(other)).swap(*this);
    return *this;
  }
  input_buffer(const input_buffer&) = delete;
  input_buffer& operator=(const input_buffer&) = delete;
  ~input_buffer() = default;

  /// Room for at least `n` more bytes at the end; fill some, then commit().
  char* prepare(std::size_t n);
  void commit(std::size_t n) noexcept { end_ += n; }
  void append(std::string_view bytes);
  std::string_view unread() const noexcept { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  void consume(std::size_t n) noexcept;
  void clear() noexcept { begin_ = end_ = 0; }
  /// Bytes moved or copied so far, for linear-time tests.
  std::uint64_t bytes_moved() const noexcept { return moved_; }

 private:
  void swap(input_buffer& other) noexcept;

  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::uint64_t moved_ = 0;
};

// ---------------------------------------------------------------------------
// Routing and responses
// ---------------------------------------------------------------------------

/// What the examples answer.
struct route {
  enum kind { hello, delay, not_found, bad_request } what = not_found;
  unsigned delay_ms = 0;
};

/// GET / -> hello; GET /delay/<ms> -> answer after ms milliseconds (0..600000).
/// Absolute-form targets are routed by their origin form.
route route_for(const request& req);

/// The path and query of a request target: `target` itself in origin form;
/// for "http://host:port/p?q" (absolute form, http or https) "/p?q". The empty
/// path of "http://host" or "http://host?q" stays empty ("" or "?q"); it means "/".
std::string_view origin_form(std::string_view target) noexcept;

/// The Connection field of a response.
enum class connection_header {
  none,        ///< HTTP/1.1 default: the connection stays open
  keep_alive,  ///< HTTP/1.0 client that asked for keep-alive: must be said
  close        ///< the server closes after this response
};

/// What to send for `req`: close when the client asked for it, or when the
/// server is draining (it finishes this response, then closes).
connection_header connection_for(const request& req, bool draining) noexcept;

const char* reason_phrase(int status) noexcept;

/// A complete response with Content-Length.
std::string response(int status, std::string_view body, connection_header connection, bool head_only = false);

/// A complete response; `keep_alive` false adds Connection: close.
/// Compatibility form, kept for callers written before connection_header.
std::string response(int status, std::string_view body, bool keep_alive, bool head_only = false);

/// The answer to a parse error or a timeout (400, 408, 413, 431, 501, 505):
/// always with Connection: close; the caller closes after sending it.
std::string error_response(int status);

/// The interim response to send when result::send_continue says so. Not a
/// response to the request: its final response follows, after the body.
std::string_view continue_response() noexcept;

/// The response to a routed request, except for the wait of a delay route:
/// the caller's event loop waits, then sends this. With `draining`, it says
/// Connection: close (the caller closes after it).
std::string answer(const request& req, const route& r, std::string_view program, std::string_view socket_name,
                   long pid, bool draining = false);

/// 400 with Connection: close.
std::string bad_request();

/// 408 with Connection: close, for a request not finished within its deadline.
std::string request_timeout();

// ---------------------------------------------------------------------------
// Compatibility: the parse() of the first examples
// ---------------------------------------------------------------------------

/// Compatibility only: the result of the stateless parse() below.
enum class parse_status { incomplete, complete, bad };

/// Compatibility only, until the examples use request_parser: parses the
/// request at the start of `buf` with the default limits, from scratch each
/// call (so a slow head is rescanned, bounded by max_header_bytes per call).
/// `bad` means answer bad_request() and close, whatever the status would be.
parse_status parse(std::string_view buf, request& req, std::size_t& consumed);

// ---------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------

namespace detail {

inline char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

inline bool is_ows(char c) noexcept {
  return c == ' ' || c == '\t';
}

inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// tchar (RFC 9110 §5.6.2)
inline bool is_tchar(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// field-value bytes (RFC 9110 §5.5): VCHAR, SP, HTAB, obs-text.
inline bool is_field_byte(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

// request-target bytes: visible ASCII (no space, control or non-ASCII byte).
inline bool is_target_byte(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  return c > 0x20 && c < 0x7f;
}

// The length of "http://" or "https://" (any case) at the start of `target`, else 0.
inline std::size_t absolute_scheme(std::string_view target) noexcept {
  for (const std::string_view scheme : {std::string_view("http://"), std::string_view("https://")})
    if (target.size() >= scheme.size() && iequals(target.substr(0, scheme.size()), scheme))
      return scheme.size();
  return 0;
}

// Calls f(element) for each element of a comma list, OWS trimmed; empty
// elements included. Stops and returns false when f does.
template <typename F>
bool each_element(std::string_view list, F f) {
  for (;;) {
    const std::size_t comma = list.find(',');
    if (!f(trim(list.substr(0, comma)))) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace detail

inline void request_parser::reset() noexcept {
  next_request();
  error_ = 0;
}

inline void request_parser::next_request() noexcept {
  req_.method.clear();
  req_.target.clear();
  req_.host.clear();
  req_.version_minor = 1;
  req_.keep_alive = true;
  req_.content_length = 0;
  req_.head_length = 0;
  line_start_ = searched_ = head_length_ = fields_ = 0;
  have_request_line_ = have_length_ = have_encoding_ = have_host_ = false;
  final_chunked_ = absolute_form_ = expect_continue_ = continue_sent_ = false;
  chunked_count_ = 0;
  close_token_ = keep_alive_token_ = false;
}

inline result request_parser::fail(int status) noexcept {
  error_ = status;
  result r;
  r.state = progress::error;
  r.status = status;
  return r;
}

inline result request_parser::parse(std::string_view input, request& out) {
  if (error_ != 0) return fail(error_);
  // The caller must pass at least what it passed before; if it did not, start over.
  if (input.size() < searched_) next_request();
  result r;
  while (head_length_ == 0) {
    const char* const base = input.data();
    const void* const found =
        searched_ < input.size() ? std::memchr(base + searched_, '\n', input.size() - searched_) : nullptr;
    if (found == nullptr) {
      examined_ += input.size() - searched_;
      searched_ = input.size();
      // The blank line, when it comes, ends past max_header_bytes.
      if (!input.empty() && input.size() >= limits_.max_header_bytes) return fail(431);
      r.state = input.empty() ? progress::empty : progress::partial_head;
      return r;
    }
    const auto lf = static_cast<std::size_t>(static_cast<const char*>(found) - base);
    examined_ += lf + 1 - searched_;
    if (lf + 1 > limits_.max_header_bytes) return fail(431);
    if (lf == line_start_ || base[lf - 1] != '\r') return fail(400);  // bare LF
    const std::string_view line(base + line_start_, lf - 1 - line_start_);
    examined_ += line.size();
    line_start_ = searched_ = lf + 1;
    int status = 0;
    if (line.empty()) {
      if (!have_request_line_) continue;  // empty lines before a request are ignored
      status = finish_head();
      if (status == 0) head_length_ = lf + 1;
    } else {
      status = have_request_line_ ? field_line(line) : request_line(line);
    }
    if (status != 0) return fail(status);
  }
  const std::size_t total = head_length_ + req_.content_length;
  if (input.size() < total) {
    r.state = progress::partial_body;
    // Only while no byte of the body is here: a client that sends it has not waited.
    if (expect_continue_ && !continue_sent_ && input.size() == head_length_)
      r.send_continue = continue_sent_ = true;
    return r;
  }
  req_.head_length = head_length_;
  out = std::move(req_);
  next_request();
  r.state = progress::complete;
  r.consumed = total;
  return r;
}

inline int request_parser::request_line(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && detail::is_tchar(line[i])) ++i;
  if (i == 0 || i == line.size() || line[i] != ' ') return 400;
  const std::size_t target_at = ++i;
  while (i < line.size() && detail::is_target_byte(line[i])) ++i;
  if (i == target_at || i == line.size() || line[i] != ' ') return 400;
  const std::string_view version = line.substr(i + 1);
  if (version.size() != 8 || version.compare(0, 5, "HTTP/") != 0 || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return 400;
  if (version[5] != '1') return 505;
  req_.version_minor = version[7] == '0' ? 0 : 1;
  req_.method.assign(line.data(), target_at - 1);
  req_.target.assign(line.data() + target_at, i - target_at);
  have_request_line_ = true;
  return absolute_form(req_.target);
}

inline int request_parser::absolute_form(std::string_view target) {
  const std::size_t scheme = detail::absolute_scheme(target);
  if (scheme == 0) return 0;
  const std::string_view rest = target.substr(scheme);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
  if (authority.empty() || authority.find('@') != std::string_view::npos) return 400;
  req_.host.assign(authority.data(), authority.size());
  absolute_form_ = true;
  return 0;
}

inline int request_parser::field_line(std::string_view line) {
  if (detail::is_ows(line.front())) return 400;  // obs-fold
  if (++fields_ > limits_.max_header_count) return 431;
  std::size_t colon = 0;
  while (colon < line.size() && detail::is_tchar(line[colon])) ++colon;
  if (colon == 0 || colon == line.size() || line[colon] != ':') return 400;
  const std::string_view name = line.substr(0, colon);
  const std::string_view raw = line.substr(colon + 1);
  for (const char c : raw)
    if (!detail::is_field_byte(c)) return 400;
  const std::string_view value = detail::trim(raw);
  if (detail::iequals(name, "content-length")) return content_length(value);
  if (detail::iequals(name, "transfer-encoding")) {
    if (have_length_ || req_.version_minor == 0) return 400;
    have_encoding_ = true;
    transfer_coding(value);
  } else if (detail::iequals(name, "host")) {
    if (have_host_) return 400;
    have_host_ = true;
    if (!absolute_form_) req_.host.assign(value.data(), value.size());
  } else if (detail::iequals(name, "expect")) {
    // HTTP/1.0 clients do not wait for 100 Continue; a server ignores theirs (RFC 9110 §10.1.1).
    detail::each_element(value, [this](std::string_view token) {
      if (req_.version_minor == 1 && detail::iequals(token, "100-continue")) expect_continue_ = true;
      return true;
    });
  } else if (detail::iequals(name, "connection")) {
    detail::each_element(value, [this](std::string_view token) {
      if (detail::iequals(token, "close")) close_token_ = true;
      if (detail::iequals(token, "keep-alive")) keep_alive_token_ = true;
      return true;
    });
  }
  return 0;
}

// Records the codings of one Transfer-Encoding field, in order; fields
// repeat as one list (RFC 9110 §5.3). Empty elements do not count (§5.6.1).
inline void request_parser::transfer_coding(std::string_view value) {
  detail::each_element(value, [this](std::string_view coding) {
    if (coding.empty()) return true;
    final_chunked_ = detail::iequals(coding, "chunked");
    if (final_chunked_) ++chunked_count_;
    return true;
  });
}

inline int request_parser::content_length(std::string_view value) {
  constexpr std::uint64_t saturated = ~std::uint64_t{0};
  std::uint64_t n = 0;
  bool first = true;
  const bool ok = detail::each_element(value, [&](std::string_view digits) {
    if (digits.empty()) return false;
    std::uint64_t v = 0;
    for (const char c : digits) {
      if (c < '0' || c > '9') return false;
      const auto d = static_cast<std::uint64_t>(c - '0');
      v = v > (saturated - d) / 10 ? saturated : v * 10 + d;
    }
    if (!first && v != n) return false;
    n = v;
    first = false;
    return true;
  });
  if (!ok) return 400;
  if (have_encoding_) return 400;
  if (have_length_ && n != req_.content_length) return 400;
  if (n > limits_.max_body_bytes || n > SIZE_MAX - limits_.max_header_bytes) return 413;
  have_length_ = true;
  req_.content_length = static_cast<std::size_t>(n);
  return 0;
}

inline int request_parser::finish_head() noexcept {
  if (req_.version_minor == 1 && !have_host_) return 400;
  // Without chunked last (exactly once), the body's end is unknown: 400, and
  // close, so that no byte of it is read as a request (RFC 9112 §6.3).
  if (have_encoding_) return final_chunked_ && chunked_count_ == 1 ? 501 : 400;
  req_.keep_alive = !close_token_ && (req_.version_minor == 1 || keep_alive_token_);
  return 0;
}

inline char* input_buffer::prepare(std::size_t n) {
  if (capacity_ - end_ >= n) return data_.get() + end_;
  const std::size_t unread = end_ - begin_;
  if (begin_ >= unread && capacity_ - unread >= n) {
    // The moved bytes are fewer than those consumed since the last move.
    std::memmove(data_.get(), data_.get() + begin_, unread);
    moved_ += unread;
  } else {
    std::size_t cap = capacity_ < 4096 ? 4096 : capacity_ * 2;
    while (cap - unread < n) cap *= 2;
    std::unique_ptr<char[]> bigger(new char[cap]);
    if (unread != 0) std::memcpy(bigger.get(), data_.get() + begin_, unread);
    moved_ += unread;
    data_ = std::move(bigger);
    capacity_ = cap;
  }
  begin_ = 0;
  end_ = unread;
  return data_.get() + end_;
}

inline void input_buffer::append(std::string_view bytes) {
  if (bytes.empty()) return;
  std::memcpy(prepare(bytes.size()), bytes.data(), bytes.size());
  commit(bytes.size());
}

inline void input_buffer::consume(std::size_t n) noexcept {
  begin_ += n < size() ? n : size();
  if (begin_ == end_) begin_ = end_ = 0;
}

inline void input_buffer::swap(input_buffer& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(capacity_, other.capacity_);
  std::swap(begin_, other.begin_);
  std::swap(end_, other.end_);
  std::swap(moved_, other.moved_);
}

inline std::string_view origin_form(std::string_view target) noexcept {
  const std::size_t scheme = detail::absolute_scheme(target);
  if (scheme == 0) return target;
  const std::string_view rest = target.substr(scheme);
  const std::size_t path = rest.find_first_of("/?");
  return path == std::string_view::npos ? std::string_view() : rest.substr(path);
}

inline route route_for(const request& req) {
  route r;
  if (req.method != "GET" && req.method != "HEAD") return r;
  const std::string_view path = origin_form(req.target);
  if (path.empty() || path == "/") {
    r.what = route::hello;
    return r;
  }
  const std::string_view prefix = "/delay/";
  if (path.substr(0, prefix.size()) == prefix) {
    if (!parse_delay_ms(path.substr(prefix.size()), r.delay_ms)) return route{route::bad_request, 0};
    r.what = route::delay;
  }
  return r;
}

inline connection_header connection_for(const request& req, bool draining) noexcept {
  if (draining || !req.keep_alive) return connection_header::close;
  return req.version_minor == 0 ? connection_header::keep_alive : connection_header::none;
}

inline const char* reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

inline std::string response(int status, std::string_view body, connection_header connection, bool head_only) {
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
      "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size());
  if (connection == connection_header::close) out += "\r\nConnection: close";
  if (connection == connection_header::keep_alive) out += "\r\nConnection: keep-alive";
  out += "\r\n\r\n";
  if (!head_only) out.append(body.data(), body.size());
  return out;
}

inline std::string response(int status, std::string_view body, bool keep_alive, bool head_only) {
  return response(status, body, keep_alive ? connection_header::none : connection_header::close, head_only);
}

inline std::string error_response(int status) {
  std::string body = reason_phrase(status);
  for (char& c : body) c = detail::lower(c);
  body += '\n';
  return response(status, body, connection_header::close);
}

inline std::string_view continue_response() noexcept {
  return "HTTP/1.1 100 Continue\r\n\r\n";
}

inline std::string answer(const request& req, const route& r, std::string_view program,
                          std::string_view socket_name, long pid, bool draining) {
  const bool head = req.method == "HEAD";
  const connection_header connection = connection_for(req, draining);
  switch (r.what) {
    case route::hello:
      return response(200,
                      std::string("hello from ") + std::string(program) + " pid=" + std::to_string(pid) +
                          " socket=" + std::string(socket_name) + "\n",
                      connection, head);
    case route::delay:
      return response(200, "delayed " + std::to_string(r.delay_ms) + " ms\n", connection, head);
    case route::bad_request:
      return response(400, "bad request\n", connection, head);
    case route::not_found:
      break;
  }
  return response(404, "not found\n", connection, head);
}

inline std::string bad_request() {
  return error_response(400);
}

inline std::string request_timeout() {
  return error_response(408);
}

inline parse_status parse(std::string_view buf, request& req, std::size_t& consumed) {
  request_parser parser;
  const result r = parser.parse(buf, req);
  if (r.failed()) return parse_status::bad;
  if (!r.complete()) return parse_status::incomplete;
  consumed = r.consumed;
  return parse_status::complete;
}

}  // namespace mini_http

#endif  // SOCKACT_EXAMPLES_MINI_HTTP_HPP
