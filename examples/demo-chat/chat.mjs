// Two phoenix.js clients join room:lobby of switchboard's demo app; one
// says hello, both see it, and presence lists them both.
// Run `switchboard serve` first, then: npm install && npm start
import { Socket, Presence } from "phoenix";
import WebSocket from "ws";

const url = process.env.SWITCHBOARD_URL ?? "ws://127.0.0.1:4000/socket";

function connect(name) {
  const socket = new Socket(url, { transport: WebSocket, params: { app: "demo", token: name } });
  socket.connect();
  const channel = socket.channel("room:lobby", { meta: { name } });
  const presence = new Presence(channel);
  presence.onSync(() => console.log(`[${name}] online:`, presence.list((id) => id).join(", ")));
  channel.on("message", (msg) => console.log(`[${name}] got message:`, msg.body));
  return new Promise((resolve, reject) =>
    channel.join()
      .receive("ok", () => resolve({ socket, channel }))
      .receive("error", (err) => reject(new Error(`join refused: ${JSON.stringify(err)}`))));
}

const alice = await connect("alice");
const bob = await connect("bob");
alice.channel.push("message", { body: "hello from alice" })
  .receive("ok", () => console.log("[alice] message accepted"))
  .receive("error", (err) => console.log("[alice] message refused:", err));
setTimeout(() => { alice.socket.disconnect(); bob.socket.disconnect(); }, 1000);
