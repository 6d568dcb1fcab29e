import { describe, expect, it } from 'vitest';
import { parseEnvelope } from './redis-bus.js';

describe('Redis bus envelope', () => {
  const event = { type: 'notification', workspaceId: 'acme', text: 'a "quoted" \\ value,"publishedAt":1}' };
  const json = JSON.stringify(event);

  it('keeps the exact JSON of a durable event, so nobody stringifies it again', () => {
    const raw = `{"id":"42","data":${json},"publishedAt":1700000000000}`;
    expect(parseEnvelope(raw)).toEqual({ id: '42', data: event, publishedAt: 1700000000000, json });
  });

  it('reads what an older node sends (plain JSON.stringify of the message), durable or not', () => {
    const durable = JSON.stringify({ id: '7', data: event, publishedAt: 5 });
    expect(parseEnvelope(durable)).toEqual({ id: '7', data: event, publishedAt: 5, json });
    const ephemeral = JSON.stringify({ data: { type: 'presence' }, publishedAt: 5 });
    expect(parseEnvelope(ephemeral)).toEqual({ data: { type: 'presence' }, publishedAt: 5 });
  });

  it('rejects a malformed message with a JSON syntax error', () => {
    expect(() => parseEnvelope('{"id":"1","data":{oops},"publishedAt":1}')).toThrow(SyntaxError);
  });
});
