"""Writes what quantize.py writes (config.json with quantization.quant_algo); records the calibration rows it read."""
import argparse
import json
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--model_dir", required=True)
parser.add_argument("--output_dir", required=True)
parser.add_argument("--qformat", required=True)
parser.add_argument("--calib_dataset", default=None)
parser.add_argument("--calib_size", type=int, default=512)
parser.add_argument("--tp_size", type=int, default=1)
parser.add_argument("--pp_size", type=int, default=1)
args, _ = parser.parse_known_args()
if args.calib_dataset is None:
    raise SystemExit("no --calib_dataset: would download cnn_dailymail")
rows = (Path(args.calib_dataset) / "train.jsonl").read_text().splitlines()[: args.calib_size]
out = Path(args.output_dir)
world = args.tp_size * args.pp_size
for rank in range(world):
    (out / f"rank{rank}.safetensors").write_bytes(b"\0" * 2048)
algo = {"fp8": "FP8", "int4_awq": "W4A16_AWQ"}[args.qformat]
mapping = {"world_size": world, "tp_size": args.tp_size, "pp_size": args.pp_size}
(out / "config.json").write_text(json.dumps({"mapping": mapping, "quantization": {"quant_algo": algo}}))
print(f"calibrated on {len(rows)} rows")
