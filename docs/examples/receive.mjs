// A Linkkit webhook receiver: Node's standard library and the official `standardwebhooks`.
//
//   npm install standardwebhooks@1.0.0
//   LINKKIT_WEBHOOK_SECRET=whsec_... node receive.mjs 3000
//
// Prints one line per new event and answers 204; refuses anything unsigned, changed or older
// than five minutes with 400.

import http from "node:http";
import { Webhook } from "standardwebhooks";

const webhook = new Webhook(process.env.LINKKIT_WEBHOOK_SECRET);
const seen = new Set(); // event ids already handled; keep them in your database in production

http
  .createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      // The raw body, exactly as it arrived: the signature covers these bytes.
      const body = Buffer.concat(chunks).toString("utf8");
      let event;
      try {
        event = webhook.verify(body, request.headers);
      } catch (error) {
        console.log(`refused: ${error.message}`);
        response.writeHead(400).end();
        return;
      }
      // Retries carry the same id: handle each event once.
      if (!seen.has(event.id)) {
        seen.add(event.id);
        console.log(`${event.event} ${event.id} ${JSON.stringify(event.data)}`);
      }
      response.writeHead(204).end();
    });
  })
  .listen(Number(process.argv[2] ?? 3000), "127.0.0.1");
