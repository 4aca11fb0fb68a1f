// Drives an Agora gateway with the official OpenAI SDK, configured only by
// the environment variables the SDK reads: OPENAI_BASE_URL and OPENAI_API_KEY.
import OpenAI from 'openai';

const client = new OpenAI();
const messages = [{ role: 'user', content: 'Say hello.' }];

const plain = await client.chat.completions.create({ model: 'agora-test', messages, max_tokens: 6, temperature: 0 });
if (plain.object !== 'chat.completion' || typeof plain.choices[0].message.content !== 'string') {
  throw new Error('unexpected plain answer: ' + JSON.stringify(plain));
}

const stream = await client.chat.completions.create({ model: 'agora-test', messages, max_tokens: 6, temperature: 0, stream: true });
let streamed = '';
let chunks = 0;
for await (const chunk of stream) {
  chunks++;
  streamed += chunk.choices[0]?.delta?.content ?? '';
}

const models = await client.models.list();
console.log(JSON.stringify({
  plain: plain.choices[0].message.content,
  usage: plain.usage,
  streamed,
  chunks,
  models: models.data.map((m) => m.id),
}));
