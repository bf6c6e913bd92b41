"""The official anthropic and openai clients against fleet's gateway, on every route family beyond chat:
Anthropic Messages (create, stream, count_tokens), OpenAI Responses (streamed and not), embeddings, and
llama-server's own /tokenize and /detokenize. Prints what it saw as JSON; any failure raises."""
import json
import sys
import urllib.request

import anthropic
import openai

base, model, embedder = sys.argv[1], sys.argv[2], sys.argv[3]
seen = {}
messages = [{"role": "user", "content": "Say hello to the fleet."}]

claude = anthropic.Anthropic(base_url=base, api_key="unused", max_retries=0)
message = claude.messages.create(model=model, max_tokens=8, messages=messages)
assert message.model == model, message.model
seen["messages"] = "".join(block.text for block in message.content if block.type == "text")
with claude.messages.stream(model=model, max_tokens=8, messages=messages) as stream:
    pieces = list(stream.text_stream)
    final = stream.get_final_message()
assert final.model == model, final.model
assert final.usage.output_tokens > 0, final.usage
seen["messagesStreamPieces"] = len(pieces)
seen["countTokens"] = claude.messages.count_tokens(model=model, messages=messages).input_tokens
assert seen["countTokens"] > 0

client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
response = client.responses.create(model=model, input="Say hello to the fleet.", max_output_tokens=8)
assert response.model == model, response.model
seen["responses"] = response.output_text
events = [event.type for event in client.responses.create(model=model, input="Say hello.", max_output_tokens=8, stream=True)]
assert "response.completed" in events, events
seen["responsesStreamEvents"] = len(events)

embeddings = client.embeddings.create(model=embedder, input=["a small fleet", "of llama servers"])
dimensions = [len(item.embedding) for item in embeddings.data]
assert len(dimensions) == 2 and dimensions[0] == dimensions[1] > 0, dimensions
assert embeddings.model == embedder, embeddings.model
seen["embeddingDimensions"] = dimensions[0]


def post(path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "X-Fleet-Model": model})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


tokens = post("/tokenize", {"content": "Hello fleet"})["tokens"]
text = post("/detokenize", {"tokens": tokens})["content"]
assert text.strip() == "Hello fleet", text
seen["tokens"] = len(tokens)
print(json.dumps(seen))
