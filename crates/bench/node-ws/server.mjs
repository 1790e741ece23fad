// A Node.js fan-out server for side-by-side runs with switchboard-bench:
// the same Phoenix V2 JSON subset the fanout scenario uses (join, heartbeat,
// a broadcast event pushed by a client, POST /api/v1/apps/<app>/broadcast),
// on the `ws` package, with the same encode-once fan-out (one string per
// broadcast, sent to every subscriber). No auth, no schema, no webhooks: it
// is the lower bound of what a Node socket server costs, not a gateway.
//
//   node server.mjs [port]     (default 4000; prints its pid and port)
import http from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? 4000);
const topics = new Map(); // topic -> Set<ws>

function broadcast(topic, event, payload) {
  const subscribers = topics.get(topic);
  if (!subscribers) return 0;
  const frame = JSON.stringify([null, null, topic, event, payload]);
  for (const ws of subscribers) ws.send(frame);
  return subscribers.size;
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url.startsWith("/health")) {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end('{"status":"ok"}');
  }
  const match = req.method === "POST" && req.url.match(/^\/api\/v1\/apps\/[^/]+\/broadcast$/);
  if (!match) {
    res.writeHead(404);
    return res.end();
  }
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    try {
      const { topic, event, payload } = JSON.parse(body);
      broadcast(topic, event, payload ?? {});
      res.writeHead(202, { "content-type": "application/json" });
      res.end("{}");
    } catch {
      res.writeHead(400);
      res.end();
    }
  });
});

const wss = new WebSocketServer({ server, path: "/socket/websocket", perMessageDeflate: false });
wss.on("connection", (ws) => {
  const joined = new Set();
  ws.on("message", (data) => {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    const [joinRef, ref, topic, event, payload] = msg;
    const reply = (status, response) =>
      ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status, response }]));
    if (topic === "phoenix" && event === "heartbeat") return reply("ok", {});
    if (event === "phx_join") {
      if (!topics.has(topic)) topics.set(topic, new Set());
      topics.get(topic).add(ws);
      joined.add(topic);
      return reply("ok", {});
    }
    if (event === "phx_leave") {
      topics.get(topic)?.delete(ws);
      joined.delete(topic);
      return reply("ok", {});
    }
    if (joined.has(topic)) {
      broadcast(topic, event, payload);
      return reply("ok", {});
    }
    reply("error", { reason: "unmatched topic" });
  });
  ws.on("close", () => {
    for (const topic of joined) topics.get(topic)?.delete(ws);
  });
});

server.listen(port, "127.0.0.1", () => console.log(`node-ws fanout server pid ${process.pid} on 127.0.0.1:${port}`));
