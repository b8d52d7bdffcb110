// A second translation unit that includes mini_http.hpp: a function defined in
// the header without `inline` becomes a duplicate symbol at link time. Also
// built alone with -fno-exceptions.
#include "mini_http.hpp"

int mini_http_second_tu() {
  mini_http::request_parser parser;
  mini_http::request req;
  mini_http::input_buffer in;
  in.append("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  const mini_http::result r = parser.parse(in.unread(), req);
  return r.complete() ? static_cast<int>(r.consumed) : -1;
}
