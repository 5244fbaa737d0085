#!/usr/bin/env node
// For working on the console against a real `udders up` without rebuilding
// the binary after each change: serves src/console/assets from disk at `/`,
// `/console/console.js` and `/console/console.css`, and passes every other
// request (server-sent events included) to the binary.
//
//   node tests/browser/dev-proxy.mjs http://127.0.0.1:8080 [port]
//
// Not used by the tests, which read the assets compiled into the binary.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const assets = path.resolve(here, '../../src/console/assets');
const upstream = new URL(process.argv[2] || 'http://127.0.0.1:8080');
const port = Number(process.argv[3] || 18098);
const files = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/console/console.js': ['console.js', 'text/javascript; charset=utf-8'],
  '/console/console.css': ['console.css', 'text/css; charset=utf-8'],
};

http.createServer((req, res) => {
  const file = req.method === 'GET' ? files[new URL(req.url, 'http://x').pathname] : null;
  if (file) {
    res.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' });
    res.end(fs.readFileSync(path.join(assets, file[0])));
    return;
  }
  const forward = http.request({
    host: upstream.hostname, port: upstream.port, method: req.method, path: req.url,
    headers: { ...req.headers, host: upstream.host },
  }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  forward.on('error', (e) => { res.writeHead(502, { 'content-type': 'text/plain' }); res.end(String(e)); });
  res.on('close', () => { if (!res.writableFinished) forward.destroy(); });
  req.pipe(forward);
}).listen(port, '127.0.0.1', () => console.log(`console from disk on http://127.0.0.1:${port}/, API from ${upstream.origin}`));
