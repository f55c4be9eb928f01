#!/bin/sh
# The work of the volume benchmark (bench/volume.sh), the same wherever it
# runs: natively in the test host, in a hull container, in a QEMU guest.
#
#   volume-work.sh DIR SEQ_SIZE RAND_SIZE RAND_TIME FILES
#
# Runs the fio jobs of volume.fio (beside this script) in DIR, then the
# small-file tool (smallfiles, beside it) with FILES files of 1 KiB. Prints
# fio's JSON report, then the tool's JSON line; leaves DIR as it found it.
set -eu
here=$(dirname "$0")
dir=$1
BENCH_DIR=$dir SEQ_SIZE=$2 RAND_SIZE=$3 RAND_TIME=$4 \
    fio --output-format=json "$here/volume.fio"
rm -f "$dir/seq" "$dir/rand"
"$here/smallfiles" "$dir" "$5" 1024
