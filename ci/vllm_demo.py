"""The main job: a tiny gpt-oss, made and MXFP4-quantized by our own code, served by a real
vLLM engine with ``--quantization mxfp4-plugin``. Prints the backend the plugin chose inside
the engine, the reason, and the generated token ids."""

import os
import sys
import tempfile

PROMPTS = [[1, 17, 42, 99, 7], [1, 200, 13, 5, 77, 31, 250, 3]]


def main() -> None:
    from vllm import LLM, SamplingParams

    from mxfp4_plugin.adapters.vllm.introspect import layer_decisions
    from mxfp4_plugin.tiny_model import make_tiny_gpt_oss

    workdir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="mxfp4-plugin-demo-")
    _, mxfp4_dir, _ = make_tiny_gpt_oss(os.path.join(workdir, "tiny-gpt-oss"), progress=True)
    print(f"tiny gpt-oss MXFP4 checkpoint: {mxfp4_dir}")
    llm = LLM(model=str(mxfp4_dir), quantization="mxfp4-plugin", skip_tokenizer_init=True, dtype="bfloat16",
              enforce_eager=True, max_model_len=128, max_num_seqs=4)
    for line in {d for per_worker in llm.apply_model(layer_decisions) for d in per_worker}:
        print(line)
    params = SamplingParams(temperature=0.0, max_tokens=12, detokenize=False, ignore_eos=True)
    for prompt, out in zip(PROMPTS, llm.generate([{"prompt_token_ids": p} for p in PROMPTS], params)):
        print(f"prompt {prompt} -> generated token ids {list(out.outputs[0].token_ids)}")


if __name__ == "__main__":
    main()
