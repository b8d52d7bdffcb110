// The examples' HTTP parser on a pipelined batch that is all read before it
// is parsed (as a loop that reads until EAGAIN does): request_parser +
// input_buffer, against the first examples' way, parse() from the front and
// erase what was used after every request, a memmove of the rest each time:
// quadratic, hence the smaller sizes. SPDX-License-Identifier: MIT
#include "mini_http.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace {

constexpr std::size_t read_size = 64 * 1024;

std::string batch(std::size_t bytes) {
  const std::string get = "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\n";
  std::string out;
  while (out.size() < bytes) out += get;
  return out;
}

void incremental(benchmark::State& state) {
  const std::string in = batch(static_cast<std::size_t>(state.range(0)));
  std::size_t requests = 0;
  for (auto _ : state) {
    mini_http::request_parser parser;
    mini_http::input_buffer buf;
    mini_http::request req;
    requests = 0;
    for (std::size_t from = 0; from < in.size(); from += read_size)
      buf.append(std::string_view(in).substr(from, read_size));
    for (;;) {
      const mini_http::result r = parser.parse(buf.unread(), req);
      if (!r.complete()) break;
      buf.consume(r.consumed);
      ++requests;
    }
    benchmark::DoNotOptimize(requests);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
  state.counters["requests"] = static_cast<double>(requests);
}

void erase_from_front(benchmark::State& state) {
  const std::string in = batch(static_cast<std::size_t>(state.range(0)));
  std::size_t requests = 0;
  for (auto _ : state) {
    std::string buf;
    mini_http::request req;
    requests = 0;
    for (std::size_t from = 0; from < in.size(); from += read_size) buf.append(in, from, read_size);
    std::size_t used = 0;
    while (mini_http::parse(buf, req, used) == mini_http::parse_status::complete) {
      buf.erase(0, used);
      ++requests;
    }
    benchmark::DoNotOptimize(requests);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
  state.counters["requests"] = static_cast<double>(requests);
}

}  // namespace

BENCHMARK(incremental)->Arg(256 << 10)->Arg(1 << 20)->Arg(4 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK(erase_from_front)->Arg(256 << 10)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
