"""Write the seed corpus of the decoder fuzzer: small .imc files of every method, RGB and RGBA,
and the valid files of the conformance suite (tests/conformance/).

    python fuzz/make_corpus.py fuzz/corpus
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import imc_fuzz  # noqa: E402


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    conformance = Path(__file__).resolve().parents[1] / "tests" / "conformance"
    seeds = {**imc_fuzz.seed_files(), **imc_fuzz.conformance_files(conformance)}
    for name, data in seeds.items():
        (out / f"seed-{name}.imc").write_bytes(data)
    print(f"{len(list(out.glob('seed-*.imc')))} seed files in {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus")
