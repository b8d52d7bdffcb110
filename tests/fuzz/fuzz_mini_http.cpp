// SPDX-License-Identifier: MIT
// libFuzzer target: the examples' HTTP/1.1 request parser,
// examples/common/mini_http.hpp (request_parser and input_buffer).
//
// Input: byte 0 picks the limits (bits 0-1 header bytes, 2-3 field count,
// 4-5 body bytes; 0 is the defaults), bytes 1-4 seed the split points; the
// rest is what a client sent on one connection.
#include "mini_http.hpp"  // first: the header must be self-contained

#include "fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using sockact_fuzz::show;

namespace {

struct event {
  mini_http::progress state = mini_http::progress::empty;
  int status = 0;
  std::size_t offset = 0;  // where the request starts in the stream
  std::size_t consumed = 0;
  mini_http::request req;
};

bool same(const event& a, const event& b) {
  return a.state == b.state && a.status == b.status && a.offset == b.offset && a.consumed == b.consumed &&
         a.req.method == b.req.method && a.req.target == b.req.target &&
         a.req.version_minor == b.req.version_minor && a.req.keep_alive == b.req.keep_alive &&
         a.req.content_length == b.req.content_length && a.req.head_length == b.req.head_length;
}

std::string describe(const std::vector<event>& evs) {
  std::string out;
  for (const event& e : evs)
    out += "  state " + std::to_string(static_cast<int>(e.state)) + " status " + std::to_string(e.status) +
           " at " + std::to_string(e.offset) + " consumed " + std::to_string(e.consumed) + " " +
           show(e.req.method) + " " + show(e.req.target) + "\n";
  return out;
}

mini_http::limits limits_for(std::uint8_t b) {
  static constexpr std::size_t header_bytes[] = {8 * 1024, 24, 64, 300};
  static constexpr std::size_t header_count[] = {100, 0, 1, 3};
  static constexpr std::size_t body_bytes[] = {1024 * 1024, 0, 5, 100};
  mini_http::limits lim;
  lim.max_header_bytes = header_bytes[b & 3];
  lim.max_header_count = header_count[(b >> 2) & 3];
  lim.max_body_bytes = body_bytes[(b >> 4) & 3];
  return lim;
}

// Feeds `stream` in chunks of the sizes `next_chunk()` gives; parses after
// each, as a server does after a read. The events, and the final state last.
template <typename Chunks>
std::vector<event> feed(std::string_view stream, const mini_http::limits& lim, Chunks next_chunk,
                        const std::string& context) {
  mini_http::request_parser parser(lim);
  mini_http::input_buffer in;
  std::vector<event> evs;
  std::size_t fed = 0, done = 0;
  mini_http::progress last = mini_http::progress::empty;
  for (;;) {
    for (;;) {
      SOCKACT_FUZZ_CHECK(in.unread() == stream.substr(done, fed - done), context);
      event e;
      const mini_http::result r = parser.parse(in.unread(), e.req);
      last = r.state;
      SOCKACT_FUZZ_CHECK(r.consumed <= in.size(), context);
      SOCKACT_FUZZ_CHECK((r.state == mini_http::progress::empty) == in.empty() || r.failed(), context);
      if (r.incomplete()) {
        SOCKACT_FUZZ_CHECK(r.consumed == 0 && r.status == 0, context);
        // A server may stop reading at max_request_bytes: parsing must not wait for more.
        SOCKACT_FUZZ_CHECK(in.empty() || in.size() < lim.max_request_bytes(), context);
        break;
      }
      e.state = r.state;
      e.status = r.status;
      e.offset = done;
      e.consumed = r.consumed;
      evs.push_back(e);
      if (r.failed()) break;
      SOCKACT_FUZZ_CHECK(r.consumed > 0, context);
      in.consume(r.consumed);
      done += r.consumed;
    }
    if (last == mini_http::progress::error || fed == stream.size()) break;
    std::size_t n = next_chunk();
    if (n > stream.size() - fed) n = stream.size() - fed;
    in.append(stream.substr(fed, n));
    fed += n;
  }
  SOCKACT_FUZZ_CHECK(parser.bytes_examined() <= 2 * stream.size(), context);
  // Moves reclaim consumed space; growth doubles.
  SOCKACT_FUZZ_CHECK(in.bytes_moved() <= done + 2 * stream.size() + 4096, context);
  if (last != mini_http::progress::error) {
    event e;
    e.state = last;
    e.offset = done;
    evs.push_back(e);
  }
  return evs;
}

// What any complete request must look like.
void check_complete(std::string_view bytes, const event& e, const mini_http::limits& lim,
                    const std::string& context) {
  const mini_http::request& q = e.req;
  SOCKACT_FUZZ_CHECK(e.consumed == bytes.size(), context);
  SOCKACT_FUZZ_CHECK(q.head_length + q.content_length == e.consumed, context);
  SOCKACT_FUZZ_CHECK(q.head_length <= lim.max_header_bytes, context);
  SOCKACT_FUZZ_CHECK(q.content_length <= lim.max_body_bytes, context);
  const std::string_view head = bytes.substr(0, q.head_length);
  SOCKACT_FUZZ_CHECK(head.size() >= 4 && head.substr(head.size() - 4) == "\r\n\r\n", context);
  std::size_t lines = 0, empty_lines = 0;
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\r') SOCKACT_FUZZ_CHECK(i + 1 < head.size() && head[i + 1] == '\n', context);
    if (head[i] != '\n') continue;
    SOCKACT_FUZZ_CHECK(i > 0 && head[i - 1] == '\r', context);
    ++lines;
    if (i + 1 == 2 * lines) ++empty_lines;  // leading empty lines
  }
  SOCKACT_FUZZ_CHECK(lines >= empty_lines + 2 && lines - empty_lines - 2 <= lim.max_header_count, context);
  const std::string line = std::string(q.method) + " " + q.target + " HTTP/1.";
  SOCKACT_FUZZ_CHECK(head.substr(2 * empty_lines, line.size()) == line, context);
  SOCKACT_FUZZ_CHECK(!q.method.empty() && !q.target.empty(), context);
  SOCKACT_FUZZ_CHECK(q.target.find(' ') == std::string::npos, context);
  SOCKACT_FUZZ_CHECK(q.version_minor == 0 || q.version_minor == 1, context);
  // Keep-alive needs the token in HTTP/1.0; closing needs "close" somewhere.
  std::string lower(head);
  for (char& c : lower) c = mini_http::detail::lower(c);
  if (q.keep_alive && q.version_minor == 0)
    SOCKACT_FUZZ_CHECK(lower.find("keep-alive") != std::string::npos, context);
  if (!q.keep_alive && q.version_minor == 1)
    SOCKACT_FUZZ_CHECK(lower.find("close") != std::string::npos, context);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const mini_http::limits lim = limits_for(data[0]);
  std::uint32_t seed = static_cast<std::uint32_t>(data[1]) | static_cast<std::uint32_t>(data[2]) << 8 |
                       static_cast<std::uint32_t>(data[3]) << 16 | static_cast<std::uint32_t>(data[4]) << 24;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 5, size - 5);
  const std::string context = "limits " + std::to_string(lim.max_header_bytes) + "/" +
                              std::to_string(lim.max_header_count) + "/" +
                              std::to_string(lim.max_body_bytes) + "\ninput: " + show(stream);

  const std::vector<event> whole = feed(
      stream, lim, [&] { return stream.size(); }, context);

  // Split at random points, and one byte at a time: the same events.
  const std::vector<event> split = feed(
      stream, lim,
      [&] {
        seed = seed * 1103515245u + 12345u;
        const std::uint32_t r = seed >> 16;
        return static_cast<std::size_t>((r & 3) == 0 ? r % 4096 : r % 16) + 1;
      },
      context);
  const std::string both = context + "\nwhole:\n" + describe(whole) + "split:\n" + describe(split);
  SOCKACT_FUZZ_CHECK(whole.size() == split.size(), both);
  for (std::size_t i = 0; i < whole.size(); ++i) SOCKACT_FUZZ_CHECK(same(whole[i], split[i]), both);
  if (stream.size() <= 2048) {
    const std::vector<event> bytes = feed(
        stream, lim, [] { return std::size_t{1}; }, context);
    SOCKACT_FUZZ_CHECK(bytes.size() == whole.size(), both + "bytewise:\n" + describe(bytes));
    for (std::size_t i = 0; i < whole.size(); ++i)
      SOCKACT_FUZZ_CHECK(same(whole[i], bytes[i]), both + "bytewise:\n" + describe(bytes));
  }

  for (const event& e : whole) {
    if (e.state == mini_http::progress::complete) {
      // The consumed bytes alone re-parse to the same request; any shorter prefix is incomplete.
      const std::string_view bytes = stream.substr(e.offset, e.consumed);
      check_complete(bytes, e, lim, both);
      mini_http::request_parser fresh(lim);
      event again;
      const mini_http::result r = fresh.parse(bytes, again.req);
      again.state = r.state;
      again.status = r.status;
      again.offset = e.offset;
      again.consumed = r.consumed;
      SOCKACT_FUZZ_CHECK(same(e, again), both);
      mini_http::request_parser shorter(lim);
      mini_http::request unused;
      SOCKACT_FUZZ_CHECK(shorter.parse(bytes.substr(0, bytes.size() - 1), unused).incomplete(), both);
      if (e.offset == 0) {  // the compatibility parse() agrees (default limits only)
        mini_http::request compat;
        std::size_t used = 0;
        const mini_http::parse_status s = mini_http::parse(stream, compat, used);
        if (data[0] == 0)
          SOCKACT_FUZZ_CHECK(s == mini_http::parse_status::complete && used == e.consumed, both);
      }
    } else if (e.state == mini_http::progress::error) {
      // Sticky: the same status whatever comes next, until reset().
      mini_http::request_parser p(lim);
      mini_http::request unused;
      const std::string_view rest = stream.substr(e.offset);
      const mini_http::result r = p.parse(rest, unused);
      SOCKACT_FUZZ_CHECK(r.failed() && r.status == e.status, both);
      SOCKACT_FUZZ_CHECK(p.parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n", unused).status == e.status, both);
      SOCKACT_FUZZ_CHECK(p.parse({}, unused).status == e.status, both);
      p.reset();
      SOCKACT_FUZZ_CHECK(!p.parse({}, unused).failed(), both);
      const std::string answer = mini_http::error_response(e.status);
      SOCKACT_FUZZ_CHECK(answer.find("\r\nConnection: close\r\n\r\n") != std::string::npos, answer);
      SOCKACT_FUZZ_CHECK(std::string(mini_http::reason_phrase(e.status)) != "Unknown", both);
    }
  }
  return 0;
}
