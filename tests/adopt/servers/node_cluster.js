// A Node cluster written without socket activation in mind: a primary and 2
// workers, each listening on port 3000 or $PORT. Node's default on Linux is
// round-robin: the primary binds and accepts, and hands each connection to a
// worker. /delay/MS answers after MS milliseconds.
const cluster = require("cluster");
const http = require("http");
const port = Number(process.env.PORT) || 3000;
if (cluster.isPrimary) {
  for (let i = 0; i < 2; i++) cluster.fork();
  cluster.on("exit", (w, code, signal) => console.error(`cluster: worker ${w.process.pid} ended (${code}, ${signal})`));
} else {
  http
    .createServer((req, res) => {
      const m = /^\/delay\/(\d+)$/.exec(req.url);
      const ms = m ? Number(m[1]) : 0;
      setTimeout(() => res.end(`hello from node-cluster worker=${process.pid} delayed ${ms} ms\n`), ms);
    })
    .listen(port)
    .on("error", (e) => {
      console.error(`cluster: worker ${process.pid}: ${e.message}`);
      process.exit(1);
    });
}
