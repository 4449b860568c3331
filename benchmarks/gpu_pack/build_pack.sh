#!/usr/bin/env bash
# Build benchmarks/gpu_pack/pack.tar.xz, the carry pack of the device run (README.md beside this).
#
#   bash benchmarks/gpu_pack/build_pack.sh
#   PYTHON=.venv/bin/python PACK_LIMIT_MIB=60 bash benchmarks/gpu_pack/build_pack.sh
#
# 1. downloads the cp312 manylinux wheels of pack-requirements.txt (pip download, no dependencies:
#    the device image has torch, e3nn, torch-geometric, numpy, scipy, pandas, ...);
# 2. installs them for the device's platform into build/stage/site (no bytecode);
# 3. keeps only SevenNet-0's checkpoint ('7net-0' = SevenNet_0__11Jul2024), the vesin-torch
#    builds of torch DEVICE_TORCH, and drops tests, LAMMPS/D3 sources and caches;
# 4. prepares the device inputs here (prepare_inputs.py: resolved protocols, DFT-validation
#    starting cells and their references; this needs pymatgen and the Materials Project data,
#    which the device lacks);
# 5. checks the device-side import closure on this machine (device_env.py: only the device's
#    packages and the pack's, the way the device will see them);
# 6. packs site/, inputs/ and manifest.json with xz and refuses a pack over PACK_LIMIT_MIB (a device
#    call carries at most 64 MiB, working tree included).
# Everything but pack.tar.xz stays in build/ (git-ignored).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
BUILD="$HERE/build"
STAGE="$BUILD/stage"
SITE="$STAGE/site"
PACK="${PACK:-$HERE/pack.tar.xz}"
LIMIT_MIB="${PACK_LIMIT_MIB:-60}"
DEVICE_TORCH="${DEVICE_TORCH:-2.10 2.11 2.12}"
CONFIG="${CONFIG:-$REPO/config/dft_validation.yaml}"
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64
           manylinux_2_17_x86_64 manylinux2014_x86_64)
t0=$SECONDS

target=(--only-binary :all: --python-version 3.12 --implementation cp)
for p in "${PLATFORMS[@]}"; do target+=(--platform "$p"); done

mkdir -p "$BUILD/wheels"
echo "build_pack: downloading wheels into $BUILD/wheels"
"$PYTHON" -m pip download -q --no-deps "${target[@]}" -d "$BUILD/wheels" \
    -r "$HERE/pack-requirements.txt"

rm -rf "$STAGE"
mkdir -p "$SITE"
"$PYTHON" -m pip install -q --no-deps --no-index --find-links "$BUILD/wheels" --no-compile \
    "${target[@]}" --target "$SITE" -r "$HERE/pack-requirements.txt"

echo "build_pack: stripping"
find "$SITE/sevenn/pretrained_potentials" -mindepth 1 -maxdepth 1 -type d \
    ! -name SevenNet_0__11Jul2024 -exec rm -rf {} +
test -f "$SITE/sevenn/pretrained_potentials/SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth"
rm -rf "$SITE/sevenn/pair_e3gnn" "$SITE/ase/test" "$SITE/bin"
find "$SITE/tables/tests" -name '*.h5' -delete
keep_torch=()
for v in $DEVICE_TORCH; do keep_torch+=(! -name "torch-$v"); done
find "$SITE/vesin_torch" -mindepth 1 -maxdepth 1 -type d -name 'torch-*' "${keep_torch[@]}" \
    -exec rm -rf {} +
find "$SITE" -path '*/include' -prune -type d -exec rm -rf {} +
find "$SITE" -name __pycache__ -prune -exec rm -rf {} +
find "$SITE" \( -name '*.pyi' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.c' -o -name '*.cpp' \
    -o -name '*.cu' -o -name '*.h' \) -delete

echo "build_pack: preparing the device inputs from $CONFIG"
"$PYTHON" "$HERE/prepare_inputs.py" "$STAGE/inputs" --config "$CONFIG"

echo "build_pack: checking the device-side import closure"
"$PYTHON" "$HERE/device_env.py" check-closure --site "$SITE"

"$PYTHON" - "$BUILD/wheels" "$HERE/pack-requirements.txt" "$STAGE/manifest.json" <<'EOF'
"""manifest.json: the carried wheels (file, sha256) and when the pack was built."""
import hashlib
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

wheels, reqs, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
pins = [ln.split("==") for ln in reqs.read_text().splitlines() if "==" in ln and not ln.startswith("#")]
rows = []
for name, version in pins:
    stem = re.sub(r"[-_.]+", "_", name).lower()
    found = [w for w in wheels.glob("*.whl")
             if w.name.lower().startswith(f"{stem}-{version}-")]
    if len(found) != 1:
        sys.exit(f"build_pack: expected one wheel of {name}=={version} in {wheels}, found {found}")
    rows.append({"name": name, "version": version, "file": found[0].name,
                 "sha256": hashlib.sha256(found[0].read_bytes()).hexdigest()})
out.write_text(json.dumps({"built_utc": datetime.now(UTC).isoformat(timespec="seconds"),
                           "wheels": rows}, indent=1) + "\n")
EOF

echo "build_pack: packing $PACK"
tar -C "$STAGE" -cf - manifest.json inputs site | xz -9 -T2 > "$PACK.part"
mv "$PACK.part" "$PACK"
bytes=$(stat -c %s "$PACK")
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
raw=$(du -sm "$STAGE" | cut -f1)
echo "build_pack: $PACK is $mib MiB ($bytes bytes; $raw MiB unpacked) in $((SECONDS - t0)) s"
if [ "$bytes" -gt $((LIMIT_MIB * 1048576)) ]; then
    echo "build_pack: the pack is over PACK_LIMIT_MIB=$LIMIT_MIB MiB; drop cuEquivariance or" \
         "checkpoints from pack-requirements.txt" >&2
    exit 1
fi
