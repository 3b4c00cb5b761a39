-- wrk script for bench/peers.py: replay pre-signed Spectrum deliveries, count non-2xx.
--
--   wrk -t2 -c16 -d8s -s deliveries.lua http://127.0.0.1:PORT/spectrum-webhook -- PREFIX
--
-- Thread n reads PREFIX.n (lines of "timestamp<TAB>signature<TAB>body", written by
-- peers.py, about one in ten a repeat of an earlier line) and sends them in order,
-- starting over only if it runs out ("wrapped" says how often). done() prints one
-- line starting with PEERS, JSON, for peers.py to read.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   deliveries = {}
   for line in io.lines(args[1] .. "." .. id) do
      local timestamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      deliveries[#deliveries + 1] = wrk.format("POST", wrk.path, {
         ["Content-Type"] = "application/json",
         ["X-Spectrum-Timestamp"] = timestamp,
         ["X-Spectrum-Signature"] = signature,
         ["X-Spectrum-Webhook-Id"] = "60d6d04f-f9fa-4a7b-9c97-37c9c90ce91c",
      }, body)
   end
   next_index, sent, wrapped, non2xx = 0, 0, 0, 0
end

function request()
   next_index = next_index + 1
   if next_index > #deliveries then
      next_index, wrapped = 1, wrapped + 1
   end
   sent = sent + 1
   return deliveries[next_index]
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local sent, wrapped, non2xx = 0, 0, 0
   for _, thread in ipairs(threads) do
      sent = sent + thread:get("sent")
      wrapped = wrapped + thread:get("wrapped")
      non2xx = non2xx + thread:get("non2xx")
   end
   local e = summary.errors
   io.write(string.format(
      'PEERS {"responses": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d,'
         .. ' "non2xx": %d, "sent": %d, "wrapped": %d, "connect_errors": %d, "read_errors": %d,'
         .. ' "write_errors": %d, "timeouts": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, non2xx, sent, wrapped, e.connect, e.read, e.write, e.timeout))
end
