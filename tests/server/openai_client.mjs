// openai_client.mjs BASE_URL API_KEY — the official OpenAI Node SDK against
// `steer serve` (tests/cli/cli_serve.sh): a completion, a chat completion and
// a streamed completion (server-sent events), steered per request with a
// control vector. Prints one JSON object with the texts; the caller compares
// them with `steer generate`.
import OpenAI from 'openai';

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
const steer = { control_vectors: [{ name: 'cv', scale: 2.0 }] };

const out = {};
const c = await client.completions.create({
  model: 'stories260K', prompt: 'Once upon a time', max_tokens: 32, temperature: 0, ...steer,
});
out.completion = c.choices[0].text;
out.completion_finish = c.choices[0].finish_reason;
out.usage = c.usage;

const chat = await client.chat.completions.create({
  model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 32, temperature: 0,
  ...steer,
});
out.chat = chat.choices[0].message.content;
out.chat_role = chat.choices[0].message.role;

const stream = await client.completions.create({
  model: 'stories260K', prompt: 'Once upon a time', max_tokens: 32, temperature: 0, stream: true, ...steer,
});
let text = '', chunks = 0, finish = null;
for await (const ch of stream) {
  chunks++;
  text += ch.choices[0].text;
  if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
}
out.stream = text;
out.stream_chunks = chunks;
out.stream_finish = finish;

const cs = await client.chat.completions.create({
  model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 32, temperature: 0,
  stream: true, ...steer,
});
let ctext = '', role = null;
for await (const ch of cs) {
  if (ch.choices[0].delta.role) role = ch.choices[0].delta.role;
  if (ch.choices[0].delta.content) ctext += ch.choices[0].delta.content;
}
out.chat_stream = ctext;
out.chat_stream_role = role;
console.log(JSON.stringify(out));
