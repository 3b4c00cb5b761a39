// The seed recipe: a Spectrum webhook verifier on Node + Hono, one process.
// Verifies exactly as Spectrum signs (v0 HMAC-SHA256 of "v0:" + timestamp + ":" + raw body,
// the secret used as its UTF-8 text, 300 s tolerance, constant-time compare), then 200.
// Nothing is stored. Run by bench/peers.py: PORT and SPECTRUM_SIGNING_SECRET from the environment.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'

const secret = process.env.SPECTRUM_SIGNING_SECRET
const tolerance = 300
const app = new Hono()

app.post('/spectrum-webhook', async (c) => {
  const timestamp = c.req.header('x-spectrum-timestamp') ?? ''
  const signature = c.req.header('x-spectrum-signature') ?? ''
  if (!/^[0-9]{1,15}$/.test(timestamp)) return c.json({ error: 'bad timestamp' }, 400)
  if (Math.abs(Math.floor(Date.now() / 1000) - Number(timestamp)) > tolerance) {
    return c.json({ error: 'timestamp outside the tolerance' }, 401)
  }
  const body = Buffer.from(await c.req.arrayBuffer())
  const digest = createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest('hex')
  const expected = Buffer.from(`v0=${digest}`)
  const received = Buffer.from(signature)
  if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
    return c.json({ error: 'bad signature' }, 401)
  }
  return c.json({ status: 'ok' }, 200)
})

app.get('/healthz', (c) => c.json({ status: 'ok' }))

serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: '127.0.0.1' })
