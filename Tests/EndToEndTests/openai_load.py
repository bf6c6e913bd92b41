"""Keeps the gateway busy with the official openai client until a stop file appears, then reports.

Usage: python openai_load.py BASE_URL MODEL STOP_FILE
Four threads alternate streamed and non-streamed chat completions. Prints one JSON object:
{"completed": N, "failures": ["...", ...]}.
"""
import json
import os
import sys
import threading

from openai import OpenAI

base_url, model, stop_file = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=120)
messages = [{"role": "user", "content": "Count to five."}]
lock = threading.Lock()
completed, failures = 0, []


def work(worker):
    global completed
    n = 0
    while not os.path.exists(stop_file):
        n += 1
        try:
            if (worker + n) % 2:
                pieces = [c.choices[0].delta.content for c in client.chat.completions.create(
                    model=model, messages=messages, max_tokens=8, stream=True) if c.choices and c.choices[0].delta.content]
                if not pieces:
                    raise RuntimeError("empty stream")
            else:
                answer = client.chat.completions.create(model=model, messages=messages, max_tokens=8)
                if not answer.choices[0].message.content:
                    raise RuntimeError("empty answer")
            with lock:
                completed += 1
        except Exception as error:  # every failure counts; the test expects none
            with lock:
                failures.append(f"{type(error).__name__}: {error}")


threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"completed": completed, "failures": failures}))
