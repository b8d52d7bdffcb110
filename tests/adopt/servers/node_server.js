// An app written without socket activation in mind: Node's plain
// http.createServer on port 3000 or $PORT (all addresses, IPv6 and IPv4).
// The child's view of LD_PRELOAD and LISTEN_FDS goes into each answer.
const http = require("http");
const { execFileSync } = require("child_process");
const child = execFileSync("/bin/sh", ["-c", 'echo "${LD_PRELOAD-unset}/${LISTEN_FDS-unset}"']).toString().trim();
http
  .createServer((req, res) => {
    res.end(`hello from node pid=${process.pid} child-env=${child}\n`);
  })
  .listen(Number(process.env.PORT) || 3000);
