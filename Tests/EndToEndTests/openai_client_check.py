"""Talks to fleet's gateway with the official openai client, as any OpenAI user would.

Usage: python openai_client_check.py BASE_URL MODEL ALIAS
Prints one JSON object with what it saw; exits 1 (with the reason on stderr) when something is wrong.
"""
import json
import sys

from openai import OpenAI

base_url, model, alias = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=120)

ids = [m.id for m in client.models.list().data]
if model not in ids or alias not in ids:
    sys.exit(f"/v1/models lists {ids}, expected {model} and {alias}")

messages = [{"role": "user", "content": "Name a colour."}]
plain = client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0)
text = plain.choices[0].message.content or ""
if not text:
    sys.exit(f"empty non-streamed answer: {plain}")
if plain.model != model:
    sys.exit(f"non-streamed answer names model {plain.model!r}, expected {model!r}")

pieces, chunk_models = [], set()
for chunk in client.chat.completions.create(model=alias, messages=messages, max_tokens=8, temperature=0, stream=True):
    chunk_models.add(chunk.model)
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
if len(pieces) < 2:
    sys.exit(f"streamed answer came in {len(pieces)} piece(s): {pieces}")
if chunk_models != {alias}:
    sys.exit(f"streamed chunks name models {chunk_models}, expected only the alias {alias!r}")

# Tool calls: llama-server's chat-template engine (--jinja, on by default) handles `tools`; a small model may
# answer in words or call the tool, and either is a 200 the client can read.
tools = [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ask = [{"role": "user", "content": "What is the weather in Paris? Use the tool."}]
called = client.chat.completions.create(model=model, messages=ask, tools=tools, tool_choice="auto", max_tokens=48, temperature=0)
reply = called.choices[0].message
if not (reply.content or reply.tool_calls):
    sys.exit(f"a tools request got neither content nor a tool call: {called}")
streamed_tool = {"content": "", "calls": 0}
for chunk in client.chat.completions.create(model=model, messages=ask, tools=tools, max_tokens=48, temperature=0, stream=True):
    if chunk.choices:
        delta = chunk.choices[0].delta
        streamed_tool["content"] += delta.content or ""
        streamed_tool["calls"] += len(delta.tool_calls or [])
if not (streamed_tool["content"] or streamed_tool["calls"]):
    sys.exit("a streamed tools request got neither content nor a tool call")

print(json.dumps({"models": ids, "plain": text, "streamed": "".join(pieces), "pieces": len(pieces),
                  "tools": {"content": reply.content, "toolCalls": len(reply.tool_calls or [])},
                  "streamedTools": streamed_tool}))
