"""Runs one vLLM engine in its own process (vLLM's CPU engine starts workers with spawn) and
prints one JSON line: the generated token ids and top-k logprobs of every prompt.

usage: python engine_driver.py '<json request>'
request: {"model": dir, "quantization": str|null, "prompts": [[ids]], "max_tokens": n,
          "logprobs": k, "prompt_logprobs": k|null, "tp": 1, "ep": false, "moe_backend": str|null}
"""

import json
import sys

if __name__ == "__main__":
    request = json.loads(sys.argv[1])
    from vllm import LLM, SamplingParams

    kwargs = dict(model=request["model"], skip_tokenizer_init=True, dtype="bfloat16", enforce_eager=True,
                  max_model_len=128, max_num_seqs=4, seed=0, tensor_parallel_size=request.get("tp", 1),
                  enable_expert_parallel=request.get("ep", False))
    if request.get("quantization"):
        kwargs["quantization"] = request["quantization"]
    if request.get("moe_backend"):
        kwargs["moe_backend"] = request["moe_backend"]
    if kwargs["tensor_parallel_size"] > 1:
        kwargs["distributed_executor_backend"] = "mp"
    llm = LLM(**kwargs)
    params = SamplingParams(temperature=0.0, max_tokens=request["max_tokens"], detokenize=False, ignore_eos=True,
                            logprobs=request.get("logprobs", 5), prompt_logprobs=request.get("prompt_logprobs"))
    outputs = llm.generate([{"prompt_token_ids": p} for p in request["prompts"]], params)

    def top(step):  # {token id: logprob}
        return {str(t): lp.logprob for t, lp in step.items()} if step is not None else None

    result = [{"tokens": list(o.outputs[0].token_ids),
               "logprobs": [top(s) for s in o.outputs[0].logprobs],
               "prompt_logprobs": [top(s) for s in o.prompt_logprobs] if o.prompt_logprobs else None}
              for o in outputs]
    print("ENGINE_RESULT " + json.dumps(result), flush=True)
