"""Writes what convert_checkpoint.py writes: config.json (with the mapping) and one rank<N>.safetensors per rank."""
import argparse
import json
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--model_dir", required=True)
parser.add_argument("--output_dir", required=True)
parser.add_argument("--dtype", default="float16")
parser.add_argument("--tp_size", type=int, default=1)
parser.add_argument("--pp_size", type=int, default=1)
args, _ = parser.parse_known_args()
out = Path(args.output_dir)
world = args.tp_size * args.pp_size
for rank in range(world):
    (out / f"rank{rank}.safetensors").write_bytes(b"\0" * 4096)
mapping = {"world_size": world, "tp_size": args.tp_size, "pp_size": args.pp_size}
(out / "config.json").write_text(
    json.dumps({"dtype": args.dtype, "mapping": mapping, "quantization": {"quant_algo": None}})
)
print(f"converted {args.model_dir}")
