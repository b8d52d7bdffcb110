// The examples' HTTP/1.1 request parser (examples/common/mini_http.hpp):
// framing, limits, keep-alive, incremental feeding and linear work.
#include "mini_http.hpp"  // first: the header must be self-contained

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using mini_http::limits;
using mini_http::progress;
using mini_http::request;
using mini_http::request_parser;
using mini_http::result;

// One thing the parser reported: a request, an error, or where it stopped.
struct event {
  progress state = progress::empty;
  int status = 0;
  std::size_t consumed = 0;
  std::string method, target;
  int version_minor = 0;
  bool keep_alive = false;
  std::size_t content_length = 0;
  std::string body;

  bool operator==(const event& o) const {
    return state == o.state && status == o.status && consumed == o.consumed && method == o.method &&
           target == o.target && version_minor == o.version_minor && keep_alive == o.keep_alive &&
           content_length == o.content_length && body == o.body;
  }
};

std::ostream& operator<<(std::ostream& os, const event& e) {
  return os << "{state " << static_cast<int>(e.state) << " status " << e.status << " consumed " << e.consumed
            << " " << e.method << " " << e.target << " 1." << e.version_minor << " ka " << e.keep_alive
            << " cl " << e.content_length << "}";
}

event stop(progress state, int status = 0) {
  event e;
  e.state = state;
  e.status = status;
  return e;
}

// Parses whatever `in` holds, as a server would after a read; appends the
// complete requests and an error to `out`, and returns where it stopped.
progress drain(request_parser& p, mini_http::input_buffer& in, std::vector<event>& out) {
  for (;;) {
    request req;
    const result r = p.parse(in.unread(), req);
    if (r.complete()) {
      EXPECT_LE(r.consumed, in.size());
      event e{r.state,
              0,
              r.consumed,
              req.method,
              req.target,
              req.version_minor,
              req.keep_alive,
              req.content_length,
              std::string(in.unread().substr(req.head_length, req.content_length))};
      out.push_back(e);
      in.consume(r.consumed);
      continue;
    }
    if (r.failed()) {
      EXPECT_TRUE(r.status == 400 || r.status == 413 || r.status == 431 || r.status == 501 ||
                  r.status == 505);
      out.push_back(stop(r.state, r.status));
    }
    return r.state;
  }
}

// Feeds `input` in pieces cut at `cuts` (offsets, increasing); the events,
// then the final state as a last event.
std::vector<event> feed(std::string_view input, const std::vector<std::size_t>& cuts,
                        const limits& lim = {}) {
  request_parser p(lim);
  mini_http::input_buffer in;
  std::vector<event> out;
  std::size_t from = 0;
  progress last = progress::empty;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    const std::size_t to = i < cuts.size() ? cuts[i] : input.size();
    in.append(input.substr(from, to - from));
    from = to;
    last = drain(p, in, out);
    if (last == progress::error) break;
  }
  if (last != progress::error) out.push_back(stop(last));
  return out;
}

std::vector<event> whole(std::string_view input, const limits& lim = {}) {
  return feed(input, {}, lim);
}

// One request, fed whole.
result parse_one(std::string_view input, request& req, const limits& lim = {}) {
  request_parser p(lim);
  return p.parse(input, req);
}

int status_of(std::string_view input, const limits& lim = {}) {
  request req;
  return parse_one(input, req, lim).status;
}

const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

TEST(MiniHttp, ParsesOneRequest) {
  request req;
  const std::string in = "GET /delay/5 HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n";
  const result r = parse_one(in, req);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_EQ(req.method, "GET");
  EXPECT_EQ(req.target, "/delay/5");
  EXPECT_EQ(req.version_minor, 1);
  EXPECT_TRUE(req.keep_alive);
  EXPECT_EQ(req.content_length, 0u);
  EXPECT_EQ(req.head_length, in.size());
}

TEST(MiniHttp, ReportsEmptyStartedAndBodyPending) {
  request req;
  EXPECT_EQ(parse_one("", req).state, progress::empty);
  EXPECT_FALSE(parse_one("", req).started());
  EXPECT_EQ(parse_one("G", req).state, progress::partial_head);
  EXPECT_TRUE(parse_one("G", req).started());
  EXPECT_EQ(parse_one("\r\n", req).state, progress::partial_head);  // a stray CRLF counts as started
  EXPECT_EQ(parse_one("GET / HTTP/1.1\r\nHost: x\r\n", req).state, progress::partial_head);
  const result r = parse_one("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab", req);
  EXPECT_EQ(r.state, progress::partial_body);
  EXPECT_TRUE(r.incomplete());
  EXPECT_EQ(r.consumed, 0u);
}

TEST(MiniHttp, PipelinedRequestsWithBodies) {
  const std::string in = get + "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
                         "PUT /b HTTP/1.1\r\nHost: x\r\ncontent-length:  0 \r\n\r\n" +
                         "GET /c HTTP/1.0\r\n\r\nGET /d";
  const std::vector<event> ev = whole(in);
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].target, "/");
  EXPECT_EQ(ev[0].consumed, get.size());
  EXPECT_EQ(ev[1].method, "POST");
  EXPECT_EQ(ev[1].body, "hello");
  EXPECT_EQ(ev[1].content_length, 5u);
  EXPECT_EQ(ev[2].method, "PUT");
  EXPECT_EQ(ev[2].content_length, 0u);
  EXPECT_EQ(ev[3].target, "/c");
  EXPECT_FALSE(ev[3].keep_alive);
  EXPECT_EQ(ev[4].state, progress::partial_head);
}

TEST(MiniHttp, SameEventsWhateverTheSplit) {
  const std::string in = "\r\n" + get + "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
                         "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
                         "GET /e HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n" + get;
  const std::vector<event> expected = whole(in);
  ASSERT_EQ(expected.size(), 4u);
  EXPECT_EQ(expected.back().status, 400);
  for (std::size_t cut = 0; cut <= in.size(); ++cut) EXPECT_EQ(feed(in, {cut}), expected) << "cut at " << cut;
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < in.size(); ++i) every.push_back(i);
  EXPECT_EQ(feed(in, every), expected);

  const std::string ok = get + "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" + get;
  const std::vector<event> all = whole(ok);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all.back().state, progress::empty);
  for (std::size_t a = 0; a <= ok.size(); ++a)
    for (std::size_t b = a; b <= ok.size(); b += 7) EXPECT_EQ(feed(ok, {a, b}), all) << a << " " << b;
}

TEST(MiniHttp, ConflictingContentLengthIs400) {
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"), 400);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\nab"), 400);
  for (const char* v : {"", "-1", "+1", "0x10", "1 2", "1;", "١", "1,", ",1"})
    EXPECT_EQ(status_of(std::string("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ") + v + "\r\n\r\n"), 400)
        << v;
}

TEST(MiniHttp, IdenticalContentLengthsCollapse) {
  request req;
  const std::string in =
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\ncontent-length: 02\r\n"
      "Content-Length: 2, 2\r\n\r\nab";
  const result r = parse_one(in, req);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(req.content_length, 2u);
  EXPECT_EQ(r.consumed, in.size());
}

TEST(MiniHttp, TransferEncoding) {
  EXPECT_EQ(
      status_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
      400);
  EXPECT_EQ(
      status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
      400);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
  EXPECT_EQ(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  // 501 only once the head is complete: a Content-Length may still come.
  request req;
  EXPECT_EQ(parse_one("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n", req).state,
            progress::partial_head);
}

// RFC 9112 §6.3: unless chunked is the final coding, the body's length is
// unknown; taken as bodiless, the body would be read as the next request.
TEST(MiniHttp, TransferEncodingNotEndingInChunkedIs400) {
  const std::string head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ";
  const std::string behind = "\r\n\r\nGET /delay/7 HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const char* te :
       {"gzip", "identity", "chunked, identity", "xchunked", "chunked;x=1", "chunked, chunked",
        "chunked\r\nTransfer-Encoding: identity", "chunked\r\nTransfer-Encoding: chunked", "", " , "}) {
    EXPECT_EQ(status_of(head + te + behind), 400) << te;
    EXPECT_EQ(feed(head + te + behind, {5, 40, 60}), std::vector<event>{stop(progress::error, 400)}) << te;
  }
  // Chunked last and once: a body these servers cannot read, 501.
  for (const char* te :
       {"chunked", "CHUNKED", "gzip, chunked", "gzip\r\nTransfer-Encoding: chunked", ", chunked ,"})
    EXPECT_EQ(status_of(head + te + behind), 501) << te;
}

TEST(MiniHttp, ExpectContinue) {
  const std::string head = "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
  request_parser p;
  request req;
  result r = p.parse(head, req);
  EXPECT_EQ(r.state, progress::partial_body);
  EXPECT_TRUE(r.send_continue);
  EXPECT_FALSE(p.parse(head, req).send_continue);  // once
  r = p.parse(head + "hello" + head, req);
  ASSERT_TRUE(r.complete());
  EXPECT_FALSE(r.send_continue);
  // The next request on the connection gets its own.
  EXPECT_TRUE(p.parse(head, req).send_continue);
  p.reset();
  EXPECT_TRUE(p.parse(head, req).send_continue);

  for (const std::string_view no : {
           "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",  // ignored in 1.0
           "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhe",  // body
                                                                                                 // coming
           "POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
       }) {
    request_parser q;
    r = q.parse(no, req);
    EXPECT_EQ(r.state, progress::partial_body) << no;
    EXPECT_FALSE(r.send_continue) << no;
  }
  // No body, nothing to wait for.
  r = parse_one("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", req);
  EXPECT_TRUE(r.complete());
  EXPECT_FALSE(r.send_continue);
  r = parse_one("POST / HTTP/1.1\r\nHost: x\r\nexpect: foo, 100-Continue\r\nContent-Length: 1\r\n\r\n", req);
  EXPECT_TRUE(r.send_continue);
  EXPECT_EQ(mini_http::continue_response(), "HTTP/1.1 100 Continue\r\n\r\n");
}

// RFC 9112 §3.2.2: the absolute form of a target is accepted, its authority is the host.
TEST(MiniHttp, AbsoluteFormTargets) {
  request req;
  ASSERT_TRUE(parse_one("GET http://example:8080/delay/5 HTTP/1.1\r\nHost: other\r\n\r\n", req).complete());
  EXPECT_EQ(req.target, "http://example:8080/delay/5");
  EXPECT_EQ(req.host, "example:8080");
  const mini_http::route r = mini_http::route_for(req);
  EXPECT_EQ(r.what, mini_http::route::delay);
  EXPECT_EQ(r.delay_ms, 5u);
  for (const char* hello : {"http://h/", "HTTP://h", "https://h:1/"}) {
    ASSERT_TRUE(parse_one(std::string("GET ") + hello + " HTTP/1.1\r\nHost: h\r\n\r\n", req).complete());
    EXPECT_EQ(mini_http::route_for(req).what, mini_http::route::hello) << hello;
  }
  ASSERT_TRUE(parse_one("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n", req).complete());
  EXPECT_EQ(req.host, "a.example");

  EXPECT_EQ(mini_http::origin_form("/p?q"), "/p?q");
  EXPECT_EQ(mini_http::origin_form("http://h:80/p?q"), "/p?q");
  EXPECT_EQ(mini_http::origin_form("http://h?q"), "?q");
  EXPECT_EQ(mini_http::origin_form("http://h"), "");
  EXPECT_EQ(mini_http::origin_form("ftp://h/p"), "ftp://h/p");
  EXPECT_EQ(mini_http::origin_form("*"), "*");

  // No host, userinfo (RFC 9110 §4.2.4), or no Host field: 400.
  for (const char* bad : {"http:///", "http://?q", "https://u@h/", "http://u:p@h/x"})
    EXPECT_EQ(status_of(std::string("GET ") + bad + " HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << bad;
  EXPECT_EQ(status_of("GET http://h/ HTTP/1.1\r\n\r\n"), 400);
}

TEST(MiniHttp, HeadTooLargeIs431) {
  const limits lim;
  std::string pad = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  pad += std::string(lim.max_header_bytes - pad.size() - 4, 'a');
  request req;
  // Exactly max_header_bytes with the blank line: accepted.
  EXPECT_TRUE(parse_one(pad + "\r\n\r\n", req).complete());
  // One byte more: 431, also when the blank line has not arrived.
  EXPECT_EQ(status_of(pad + "a\r\n\r\n"), 431);
  EXPECT_EQ(status_of(pad + "aa\r\n"), 431);
  EXPECT_EQ(status_of(std::string(lim.max_header_bytes, 'G')), 431);
  EXPECT_EQ(parse_one(std::string(lim.max_header_bytes - 1, 'G'), req).state, progress::partial_head);
  // Stray empty lines count.
  std::string crlfs;
  for (std::size_t i = 0; i < lim.max_header_bytes / 2; ++i) crlfs += "\r\n";
  EXPECT_EQ(status_of(crlfs), 431);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n", limits{8, 100, 0}), 431);
}

TEST(MiniHttp, TooManyFieldsIs431) {
  const limits lim{8192, 5, 1024};
  std::string in = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 4; ++i) in += "A: b\r\n";
  request req;
  EXPECT_TRUE(parse_one(in + "\r\n", req, lim).complete());
  in += "A: b\r\n";
  EXPECT_EQ(status_of(in, lim), 431);  // before the blank line
  EXPECT_EQ(status_of(in + "\r\n", lim), 431);
}

TEST(MiniHttp, Versions) {
  request req;
  EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
  EXPECT_EQ(status_of("GET / HTTP/0.9\r\n\r\n"), 505);
  EXPECT_EQ(status_of("GET / HTTP/2.0\r\n"), 505);  // known at the end of the request line
  for (const char* v :
       {"HTTP/1", "HTTP/1.10", "http/1.1", "HTTP/1.x", "HTTP/11", "HTTP/1.1 ", "", "HTTPS/1.1"})
    EXPECT_EQ(status_of(std::string("GET / ") + v + "\r\nHost: x\r\n\r\n"), 400) << v;
  ASSERT_TRUE(parse_one("GET / HTTP/1.2\r\nHost: x\r\n\r\n", req).complete());
  EXPECT_EQ(req.version_minor, 1);
  EXPECT_EQ(status_of("GET /\r\n\r\n"), 400);  // HTTP/0.9 form
}

TEST(MiniHttp, KeepAliveRules) {
  const auto keep = [](const std::string& in) {
    request req;
    EXPECT_TRUE(parse_one(in, req).complete()) << in;
    return req.keep_alive;
  };
  EXPECT_TRUE(keep("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, CLOSE\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.0\r\nConnection: foo,\t keep-alive \r\n\r\n"));
}

TEST(MiniHttp, BodyLimitIs413) {
  const limits lim{8192, 100, 10};
  request req;
  EXPECT_TRUE(
      parse_one("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", req, lim).complete());
  EXPECT_EQ(req.content_length, 10u);
  // 413 as soon as the field is read, without waiting for the body.
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n", lim), 413);
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n"),
            413);
}

TEST(MiniHttp, MalformedHeadsAre400) {
  for (const std::string& in :
       {std::string("GET / HTTP/1.1\nHost: x\r\n\r\n"), std::string("GET / HTTP/1.1\r\nHost: x\n\r\n"),
        std::string("GET / HTTP/1.1\r\nHost: x\r\n\n"), std::string("GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n", 36),
        std::string("GET / HTTP/1.1\r\n\r\n"), std::string("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        std::string(" GET / HTTP/1.1\r\nHost: x\r\n\r\n"), std::string("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"),
        std::string("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n"),
        std::string("GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"),
        std::string("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nNoColon\r\n\r\n")})
    EXPECT_EQ(status_of(in), 400) << ::testing::PrintToString(in);
  request req;
  EXPECT_TRUE(
      parse_one("GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\t \r\n\r\n", req).complete());  // obs-text
  EXPECT_TRUE(parse_one("GET / HTTP/1.1\r\nHost:\r\n\r\n", req).complete());                 // empty Host
}

TEST(MiniHttp, ErrorsAreStickyUntilReset) {
  request_parser p;
  request req;
  EXPECT_EQ(p.parse("GET / HTTP/3.0\r\n", req).status, 505);
  EXPECT_EQ(p.parse(get, req).status, 505);
  EXPECT_EQ(p.parse("", req).status, 505);
  p.reset();
  EXPECT_TRUE(p.parse(get, req).complete());
}

TEST(MiniHttp, ShorterInputThanBeforeStartsOver) {
  request_parser p;
  request req;
  EXPECT_EQ(p.parse("GET /a HTTP/1.1\r\nHost: a-longer-name\r\n", req).state, progress::partial_head);
  ASSERT_TRUE(p.parse(get, req).complete());  // a contract breach, but no stale state survives it
  EXPECT_EQ(req.target, "/");
}

TEST(MiniHttp, NeverIncompleteOnceMaxRequestBytesAreHere) {
  const limits lim{64, 4, 32};
  for (const std::string& prefix : {std::string("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 32\r\n\r\n"),
                                    std::string("GET / HTTP/1.1\r\n"), std::string(""),
                                    std::string("GET / HTTP/1.1\r\nA: b\r\nA: b\r\nA: b\r\n")}) {
    const std::string in = prefix + std::string(lim.max_request_bytes(), 'x');
    request req;
    EXPECT_FALSE(parse_one(std::string_view(in).substr(0, lim.max_request_bytes()), req, lim).incomplete())
        << prefix;
  }
}

// Work is counted, not timed: bytes the parser examined and bytes the buffer moved.
TEST(MiniHttp, PipelinedBatchIsLinear) {
  std::string batch;
  while (batch.size() < 4 * 1024 * 1024)
    batch += get + "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
  for (const std::size_t chunk : {std::size_t{1} << 16, std::size_t{1460}, std::size_t{7}}) {
    request_parser p;
    mini_http::input_buffer in;
    std::vector<event> ev;
    for (std::size_t from = 0; from < batch.size(); from += chunk) {
      in.append(std::string_view(batch).substr(from, chunk));
      ASSERT_NE(drain(p, in, ev), progress::error);
    }
    EXPECT_TRUE(in.empty());
    EXPECT_EQ(ev.size() % 2, 0u);
    EXPECT_LE(p.bytes_examined(), 2 * batch.size()) << chunk;  // each head byte: found once, checked once
    EXPECT_LE(in.bytes_moved(), batch.size()) << chunk;
  }
}

TEST(MiniHttp, SlowHeadIsNotRescanned) {
  const limits lim;
  std::string head =
      "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(lim.max_header_bytes - 40, 'a') + "\r\n\r\n";
  request_parser p;
  request req;
  for (std::size_t n = 0; n < head.size(); ++n) ASSERT_TRUE(p.parse(head.substr(0, n), req).incomplete());
  ASSERT_TRUE(p.parse(head, req).complete());
  EXPECT_LE(p.bytes_examined(), 2 * head.size());
}

TEST(MiniHttp, InputBuffer) {
  mini_http::input_buffer in;
  EXPECT_TRUE(in.empty());
  char* w = in.prepare(3);
  w[0] = 'a';
  w[1] = 'b';
  in.commit(2);
  in.append("cd");
  EXPECT_EQ(in.unread(), "abcd");
  in.consume(1);
  EXPECT_EQ(in.unread(), "bcd");
  mini_http::input_buffer moved = std::move(in);
  EXPECT_EQ(moved.unread(), "bcd");
  moved.consume(100);
  EXPECT_TRUE(moved.empty());
  // A small unread tail behind a large consumed prefix is moved, not grown.
  moved.append(std::string(4000, 'x'));
  moved.consume(3990);
  moved.append(std::string(3000, 'y'));
  EXPECT_EQ(moved.size(), 3010u);
  EXPECT_EQ(moved.unread().substr(0, 10), "xxxxxxxxxx");
  EXPECT_EQ(moved.bytes_moved(), 10u);
}

TEST(MiniHttp, Responses) {
  for (const int s : {400, 408, 413, 431, 501, 505}) {
    const std::string r = mini_http::error_response(s);
    EXPECT_EQ(r.rfind("HTTP/1.1 " + std::to_string(s) + " " + mini_http::reason_phrase(s) + "\r\n", 0), 0u)
        << r;
    EXPECT_NE(r.find("\r\nConnection: close\r\n\r\n"), std::string::npos) << r;
  }
  EXPECT_EQ(mini_http::bad_request(), mini_http::error_response(400));
  EXPECT_EQ(mini_http::request_timeout(), mini_http::error_response(408));
  EXPECT_NE(mini_http::bad_request().find("bad request\n"), std::string::npos);
  EXPECT_STREQ(mini_http::reason_phrase(100), "Continue");

  request req;
  ASSERT_TRUE(parse_one("HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", req).complete());
  const mini_http::route r = mini_http::route_for(req);
  EXPECT_EQ(r.what, mini_http::route::hello);
  const std::string kept = mini_http::answer(req, r, "p", "web", 1);
  EXPECT_NE(kept.find("Connection: keep-alive\r\n"), std::string::npos);
  EXPECT_EQ(kept.substr(kept.size() - 4), "\r\n\r\n");  // HEAD: no body
  const std::string drained = mini_http::answer(req, r, "p", "web", 1, true);
  EXPECT_NE(drained.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(mini_http::connection_for(req, true), mini_http::connection_header::close);
  req.version_minor = 1;
  EXPECT_EQ(mini_http::connection_for(req, false), mini_http::connection_header::none);
  EXPECT_EQ(mini_http::response(200, "x", true).find("Connection"), std::string::npos);
  EXPECT_NE(mini_http::response(200, "x", false).find("Connection: close"), std::string::npos);
}

TEST(MiniHttp, CompatibilityParse) {
  request req;
  std::size_t used = 0;
  const std::string two = get + get;
  EXPECT_EQ(mini_http::parse(two, req, used), mini_http::parse_status::complete);
  EXPECT_EQ(used, get.size());
  EXPECT_EQ(mini_http::parse("GET / HTTP/1.1\r\n", req, used), mini_http::parse_status::incomplete);
  EXPECT_EQ(mini_http::parse("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", req, used),
            mini_http::parse_status::bad);
}

}  // namespace
