#!/usr/bin/env bash
# The arm64 Raspberry Pi OS check (issue 16), on an x86_64 Debian host: a Debian bookworm arm64 root built
# with debootstrap and run under qemu-user (binfmt_misc); edgepose installed in it from the committed code
# exactly as a Pi user installs it (`pip install .`, then `.[video]`; a second venv with numpy<2 +
# tflite-runtime), run on the shared photos and videos, benchmarked (emulated: the timings are NOT device
# speed), and its keypoints compared with the x86_64 run of the same commands. See README.md.
#
#   sudo benchmarks/pi_os/check.sh [--root DIR] [--out FILE] [options]      (--help for all)
#
# Exits non-zero when any step fails; the result JSON is written either way.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

BASE=/work/pi_os_root
OUT=$REPO/benchmarks/results/pi_os_check_qemu-aarch64.json
SHARED=/work/shared
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
CPU=cortex-a76             # the Raspberry Pi 5's core; QEMU's default `max` adds SVE/SME (see README, trap 2)
REF=HEAD
X86_PYTHON=$REPO/.venv/bin/python
BENCH_RUNS=5
LABEL=qemu-aarch64-emulated
STEP_TIMEOUT=2400
REBUILD=0
HOST_SETUP=1
FAKE_CPUINFO=auto

usage() {
    cat <<EOF
usage: $0 [options]
  --root DIR          where the arm64 root (DIR/rootfs) and the work files (DIR/work) live [$BASE]
  --out FILE          result JSON [$OUT]
  --shared DIR        shared models and data, bind-mounted read-only at the same path [$SHARED]
  --ref REV           the committed revision installed in the root (git archive) [$REF]
  --cpu MODEL         QEMU_CPU for every arm64 program [$CPU]
  --x86-python PATH   python of the x86_64 reference environment (its deps; the code is REV's) [$X86_PYTHON]
  --runs N            edgepose bench --runs [$BENCH_RUNS]
  --label NAME        edgepose bench --label [$LABEL]
  --suite NAME        Debian suite [$SUITE];  --mirror URL  [$MIRROR]
  --rebuild           delete and rebuild the root (else an existing complete one is reused)
  --no-host-setup     do not apt-get install debootstrap / qemu-user-static on the host
  --fake-cpuinfo      bind-mount a Raspberry Pi 5 /proc/cpuinfo into the root (automatic with qemu < 8)
EOF
}

while (($#)); do
    case $1 in
        --root) BASE=$2; shift ;;
        --out) OUT=$2; shift ;;
        --shared) SHARED=$2; shift ;;
        --ref) REF=$2; shift ;;
        --cpu) CPU=$2; shift ;;
        --x86-python) X86_PYTHON=$2; shift ;;
        --runs) BENCH_RUNS=$2; shift ;;
        --label) LABEL=$2; shift ;;
        --suite) SUITE=$2; shift ;;
        --mirror) MIRROR=$2; shift ;;
        --rebuild) REBUILD=1 ;;
        --no-host-setup) HOST_SETUP=0 ;;
        --fake-cpuinfo) FAKE_CPUINFO=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

BASE=$(realpath -m "$BASE")
OUT=$(realpath -m "$OUT")
RFS=$BASE/rootfs          # the arm64 root
WORK=$BASE/work           # host side: logs, x86_64 reference, step table, metadata
GUEST=/home/pi/check      # guest side: outputs of the arm64 runs ($RFS$GUEST on the host)
SRC=/home/pi/edgepose     # the committed code, extracted
VENV=/home/pi/venv        # pip install ., then .[video]
VENV_TFL=/home/pi/venv-tflite   # pip install . 'numpy<2' tflite-runtime
MARKER=$RFS/.edgepose-root-complete

say() { printf '\n==> %s\n' "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root (debootstrap, chroot and mount need it)"
[[ $(uname -m) == x86_64 ]] || die "meant for an x86_64 host (on an arm64 machine, install and run edgepose directly)"
[[ -d $SHARED/models && -d $SHARED/data ]] || die "no shared data at $SHARED"
git -C "$REPO" rev-parse --verify -q "$REF^{commit}" >/dev/null || die "no commit $REF in $REPO"

T_START=$(date +%s.%N)
mkdir -p "$WORK"
rm -rf "$WORK/logs" "$WORK/meta" "$WORK/x86" && mkdir -p "$WORK/logs" "$WORK/meta" "$WORK/x86"
: >"$WORK/steps.tsv"
: >"$WORK/pairs.tsv"
FAILED=0
meta() { printf '%s' "${*:2}" >"$WORK/meta/$1.txt"; }

# ---- steps: each one timed, logged to work/logs/NAME.log and recorded in work/steps.tsv -----------------
# step NAME critical|optional COMMAND...   (a failed critical step ends the check: nothing after it can run)
step() {
    local name=$1 kind=$2 rc=0 t0 t1 dur
    shift 2
    say "[$name] ${STEP_MSG:-$*}"
    t0=$(date +%s.%N)
    "$@" >"$WORK/logs/$name.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    dur=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    local status=pass
    if ((rc == 99)); then
        status=skipped
    elif ((rc != 0)); then
        status=fail
        FAILED=$((FAILED + 1))
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$dur" "$rc" "${STEP_MSG:-$*}" >>"$WORK/steps.tsv"
    STEP_MSG=
    if [[ $status == fail ]]; then
        echo "    FAIL (exit $rc, ${dur}s); last lines of $WORK/logs/$name.log:"
        tail -n 25 "$WORK/logs/$name.log" | sed 's/^/    | /'
        if [[ $kind == critical ]]; then
            finish
        fi
    else
        echo "    $status (${dur}s)"
        if [[ $status == skipped ]]; then
            tail -n 3 "$WORK/logs/$name.log" | sed 's/^/    | /'
        fi
    fi
    return 0
}

# ---- mounts (undone on exit) -------------------------------------------------------------------------------
MOUNTS=()
bind() { # bind SRC DEST [ro]
    local src=$1 dst=$2
    mkdir -p "$dst"
    mountpoint -q "$dst" || mount --bind "$src" "$dst" || return 1
    MOUNTS+=("$dst")
    if [[ ${3:-} == ro ]]; then mount -o remount,bind,ro "$dst" || return 1; fi
}
unmount_all() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || true
    done
    MOUNTS=()
}
mounted_under() { awk -v r="$1/" '{ if (index($2 "/", r) == 1) print $2 }' /proc/mounts; }

finish() {
    unmount_all
    local t_end
    t_end=$(date +%s.%N)
    meta total_wall_s "$(awk -v a="$T_START" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')"
    meta disk_rootfs "$(du -sh --one-file-system "$RFS" 2>/dev/null | cut -f1)"
    meta disk_work "$(du -sh "$WORK" 2>/dev/null | cut -f1)"
    say "[result] $OUT"
    local rc=0
    python3 "$HERE/compare.py" report --work "$WORK" --guest-out "$RFS$GUEST/out" --out "$OUT" || rc=$?
    if ((rc == 1)); then
        echo "    the result says: not passed"
        ((FAILED)) || FAILED=1    # a keypoint comparison failed
    elif ((rc != 0)); then
        echo "    FAIL: compare.py could not write the result"
        FAILED=$((FAILED + 1))
    fi
    if ((FAILED)); then
        say "pi_os check: $FAILED step(s) FAILED (see above and $WORK/logs)"
        exit 1
    fi
    say "pi_os check: all steps passed (${BASE})"
    exit 0
}
trap 'echo "interrupted" >&2; FAILED=$((FAILED + 1)); finish' INT TERM

qemu_bin() { command -v qemu-aarch64-static || command -v qemu-aarch64; }
qemu_major() { "$(qemu_bin)" --version 2>/dev/null | sed -n '1s/.*version \([0-9]*\).*/\1/p'; }

# ---- 1. host packages ----------------------------------------------------------------------------------------
host_setup() {
    export DEBIAN_FRONTEND=noninteractive
    local need=()
    command -v debootstrap >/dev/null || need+=(debootstrap)
    [[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || need+=(debian-archive-keyring)
    if ((${#need[@]})); then
        apt-get update -q && nice -n 10 apt-get install -y -q "${need[@]}" || return 1
    fi
    # qemu < 8 shows arm64 programs the host's x86 /proc/cpuinfo (LiteRT segfaults): prefer the backport.
    if [[ -z $(qemu_bin) || $(qemu_major) -lt 8 ]]; then
        local codename
        codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
        if [[ $codename == bookworm ]]; then
            grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ ||
                echo "deb http://deb.debian.org/debian bookworm-backports main" >/etc/apt/sources.list.d/bookworm-backports.list
            apt-get update -q && nice -n 10 apt-get install -y -q -t bookworm-backports qemu-user-static ||
                echo "warning: no qemu-user-static from bookworm-backports; falling back to the distribution's"
        fi
        [[ -n $(qemu_bin) ]] || nice -n 10 apt-get install -y -q qemu-user-static || return 1
    fi
    echo "debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
    "$(qemu_bin)" --version | sed -n 1p
}

# ---- 2. binfmt_misc: arm64 ELF files run through qemu (registered with F: no qemu copy needed in the root) --
binfmt_setup() {
    local d=/proc/sys/fs/binfmt_misc conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [[ -e $d/register ]] || mount -t binfmt_misc binfmt_misc "$d" ||
        { echo "binfmt_misc cannot be mounted here: arm64 programs cannot exec other arm64 programs"; return 1; }
    # Register afresh so that the qemu installed now is the one used (F keeps the binary open at registration).
    [[ -e $d/qemu-aarch64 ]] && echo -1 >"$d/qemu-aarch64"
    if [[ -f $conf ]]; then
        cat "$conf" >"$d/register" || return 1              # qemu >= 8 packages: systemd binfmt.d format
    else
        update-binfmts --enable qemu-aarch64 || return 1    # qemu 7.2 packages: binfmt-support
    fi
    cat "$d/qemu-aarch64"
    grep -qx enabled "$d/qemu-aarch64" || return 1
    grep -q '^flags:.*F' "$d/qemu-aarch64" || echo "note: registered without F; the interpreter is copied into the root"
}

# ---- 3. the root ------------------------------------------------------------------------------------------
debootstrap_root() {
    if [[ -f $MARKER && $REBUILD == 0 ]]; then
        echo "reusing the root at $RFS (built $(cat "$MARKER")); --rebuild to start over"
        meta root_built "reused: built $(cat "$MARKER")"
        return 0
    fi
    if [[ -e $RFS ]]; then
        [[ -z $(mounted_under "$RFS") ]] || { echo "refusing to delete $RFS: still mounted:"; mounted_under "$RFS"; return 1; }
        echo "removing the incomplete or old root $RFS"
        rm -rf --one-file-system "$RFS"
    fi
    mkdir -p "$RFS"
    # The default variant (required + important) is nearer Raspberry Pi OS Lite than minbase.
    local t0=$SECONDS
    nice -n 10 debootstrap --arch=arm64 --include=python3,python3-venv,python3-pip,ca-certificates \
        "$SUITE" "$RFS" "$MIRROR" || return 1
    echo "$(date -u +%FT%TZ), debootstrap took $((SECONDS - t0)) s" >"$MARKER"
    meta root_built "this run: $(cat "$MARKER")"
}

# pip in the root uses the host's pip configuration (index, local file indexes, constraints) and CA bundle.
PIP_ENV=()
PIP_DIRS=()
pip_config() {
    PIP_ENV=() PIP_DIRS=()
    local py
    py=$(command -v python3) || { echo "no host python3: the root's pip uses its defaults (PyPI)"; return 0; }
    "$py" -m pip --version >/dev/null 2>&1 || { echo "no host pip: the root's pip uses its defaults"; return 0; }
    local f
    while read -r f; do
        [[ -f $f ]] || continue
        mkdir -p "$RFS$(dirname "$f")" && cp -a "$f" "$RFS$f" && echo "copied $f"
    done < <("$py" -m pip config debug 2>/dev/null | sed -n 's/^ *\(\/[^,]*\), exists: True$/\1/p' | grep -v "^$HOME/.pyenv")
    # Files the configuration names (constraints, CA bundle) and the local indexes it reads.
    local key val item
    while IFS='=' read -r key val; do
        val=${val#\'} val=${val%\'}
        for item in $val; do
            item=${item#file://}
            case $key in
                *constraint | *requirement) [[ -f $item ]] && mkdir -p "$RFS$(dirname "$item")" && cp -a "$item" "$RFS$item" ;;
                *find-links | *index-url) [[ -d $item ]] && [[ $item == /* ]] && PIP_DIRS+=("${item%/}") ;;
            esac
        done
    done < <("$py" -m pip config list 2>/dev/null)
    # The local indexes: their root folders (e.g. /opt/pypi for /opt/pypi/simple, whose links go ../../files).
    local dirs=() d
    for d in "${PIP_DIRS[@]}"; do
        [[ $d == */simple ]] && d=${d%/simple}
        dirs+=("$d")
    done
    PIP_DIRS=($(printf '%s\n' "${dirs[@]}" | sort -u))
    cp /etc/ssl/certs/ca-certificates.crt "$RFS/etc/ssl/certs/edgepose-host-ca.crt" || return 1
    local v
    while IFS= read -r v; do PIP_ENV+=("$v"); done < <(env | grep '^PIP_' | grep -v '^PIP_CERT=')
    PIP_ENV+=("PIP_CERT=/etc/ssl/certs/edgepose-host-ca.crt" "PIP_ROOT_USER_ACTION=ignore")
    echo "pip environment: ${PIP_ENV[*]}"
    echo "local index folders bind-mounted read-only: ${PIP_DIRS[*]:-none}"
}

PI5_CPUINFO='processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

Revision	: d04170
Serial		: 0000000000000000
Model		: Raspberry Pi 5 Model B Rev 1.0
'

prepare_root() {
    unmount_all
    mkdir -p "$RFS/proc"
    mountpoint -q "$RFS/proc" || mount -t proc proc "$RFS/proc" || return 1
    MOUNTS+=("$RFS/proc")
    bind /sys "$RFS/sys" ro || return 1
    bind /dev "$RFS/dev" || return 1
    bind /dev/pts "$RFS/dev/pts" || return 1
    bind "$SHARED" "$RFS$SHARED" ro || return 1
    if [[ $FAKE_CPUINFO == 1 ]] || [[ $FAKE_CPUINFO == auto && $(qemu_major) -lt 8 ]]; then
        printf '%s' "$PI5_CPUINFO" >"$WORK/cpuinfo-pi5"
        bind "$WORK/cpuinfo-pi5" "$RFS/proc/cpuinfo" ro || return 1
        meta fake_cpuinfo "Raspberry Pi 5 /proc/cpuinfo bind-mounted over the emulated one"
        echo "a Raspberry Pi 5 /proc/cpuinfo is bind-mounted over the root's"
    fi
    cp -L /etc/resolv.conf "$RFS/etc/resolv.conf"
    pip_config || return 1
    local d
    for d in "${PIP_DIRS[@]}"; do bind "$d" "$RFS$d" ro || return 1; done
    # Registered without F: the interpreter must exist inside the root.
    local interp
    interp=$(sed -n 's/^interpreter //p' /proc/sys/fs/binfmt_misc/qemu-aarch64)
    if ! grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
        mkdir -p "$RFS$(dirname "$interp")" && cp -L "$interp" "$RFS$interp" || return 1
    fi
    # The committed code (not the working tree): what a Pi user clones.
    # Fresh venvs and outputs every run.
    rm -rf "$RFS$SRC" "$RFS$GUEST" "$RFS$VENV" "$RFS$VENV_TFL" && mkdir -p "$RFS$SRC" "$RFS$GUEST/out"
    git -C "$REPO" archive "$REF" | tar -x -C "$RFS$SRC" || return 1
    meta commit "$(git -C "$REPO" rev-parse "$REF")"
    meta worktree_dirty "$(git -C "$REPO" status --porcelain --untracked-files=no | wc -l) tracked file(s) modified in the working tree (not part of the check)"
    echo "extracted $(git -C "$REPO" rev-parse --short "$REF") into $SRC"
}

# Run a bash snippet inside the root, every arm64 program under qemu with QEMU_CPU=$CPU.
in_root() {
    QEMU_CPU=$CPU nice -n 10 timeout --kill-after=30 "$STEP_TIMEOUT" chroot "$RFS" /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        QEMU_CPU="$CPU" EDGEPOSE_MODEL_DIR="$SHARED/models" "${PIP_ENV[@]}" \
        /bin/bash -eo pipefail -c "$1"
}

root_info() {
    local info
    info=$(in_root '
        echo "uname -m: $(uname -m)"
        echo "debian: $(cat /etc/debian_version)"
        python3 -V
        ldd --version | sed -n 1p      # not head: with pipefail, a SIGPIPE to ldd fails the step
        echo "--- /proc/cpuinfo (emulated) ---"; sed -n 1,12p /proc/cpuinfo') || { echo "$info"; return 1; }
    echo "$info"
    [[ $info == *"uname -m: aarch64"* ]] || { echo "not running as aarch64"; return 1; }
    meta debian_version "$(sed -n 's/^debian: //p' <<<"$info")"
    meta python_version "$(sed -n 's/^Python //p' <<<"$info")"
    meta glibc "$(sed -n 's/^ldd //p' <<<"$info")"
    meta emulated_cpuinfo "$(sed -n '/^--- \/proc\/cpuinfo/,$p' <<<"$info" | tail -n +2)"
    if grep -Eq '^(vendor_id|model name).*(Intel|AMD)' <<<"$info"; then
        echo "the root sees the host's x86 /proc/cpuinfo (qemu < 8): LiteRT crashes on it; use --fake-cpuinfo"
        return 1
    fi
}

# ---- the commands compared between x86_64 and aarch64 ---------------------------------------------------
PHOTOS=$(printf '%s ' "$SHARED"/data/coco/*.jpg)
DEMO=$SHARED/data/video/demo.mp4
SQUATS=$SHARED/data/fitness/pose_squats.mp4
RUNS_BASE=("photos-single|$PHOTOS" "photos-multi|$PHOTOS --mode multi")
RUNS_VIDEO=("video-demo-single|$DEMO" "video-demo-multi|$DEMO --mode multi" "video-squats-single|$SQUATS")

x86_reference() {
    # The x86_64 run of the same committed code: REV installed into a folder put ahead of the reference
    # environment's own (editable) edgepose, with that environment's dependencies.
    local site=$WORK/x86/site
    [[ -x $X86_PYTHON ]] || { echo "no x86_64 reference python at $X86_PYTHON"; return 1; }
    nice -n 10 "$X86_PYTHON" -m pip install -q --no-deps --target "$site" "$RFS$SRC" || return 1
    local where
    where=$(PYTHONPATH=$site "$X86_PYTHON" -c 'import edgepose; print(edgepose.__file__)')
    [[ $where == "$site"/* ]] || { echo "the reference imports edgepose from $where, not $site"; return 1; }
    "$X86_PYTHON" -m pip freeze >"$WORK/x86/freeze.txt"
    "$X86_PYTHON" -V >"$WORK/x86/python.txt"
    PYTHONPATH=$site x86_runs "$X86_PYTHON" "" "" "${RUNS_BASE[@]}" "${RUNS_VIDEO[@]}"
}

x86_reference_tflite() {
    # No x86_64 environment has tflite-runtime: the same install as the second arm64 venv, on the host.
    local venv=$WORK/x86/venv-tflite
    rm -rf "$venv"
    nice -n 10 python3 -m venv "$venv" || return 1
    nice -n 10 "$venv/bin/pip" install -q "$RFS$SRC" 'numpy<2' tflite-runtime 2>&1 | grep -v '^WARNING: Location' || true
    "$venv/bin/pip" freeze >"$WORK/x86/freeze-tflite.txt" || return 1
    grep -q '^tflite-runtime==' "$WORK/x86/freeze-tflite.txt" || { echo "tflite-runtime not installed"; return 1; }
    x86_runs "$venv/bin/python" "-tflite-runtime" "--backend tflite-runtime" "${RUNS_BASE[@]}"
}

# x86_runs PYTHON SUFFIX EXTRA NAME|ARGS...: every run is tried; the step fails if one did.
x86_runs() {
    local py=$1 suffix=$2 extra=$3 r name args rc=0 status
    shift 3
    for r in "$@"; do
        name=${r%%|*} args=${r#*|}
        echo "+ edgepose run $args $extra -o $name$suffix.jsonl"
        EDGEPOSE_MODEL_DIR=$SHARED/models nice -n 10 "$py" -m edgepose.cli run $args $extra \
            -o "$WORK/x86/$name$suffix.jsonl" || { status=$?; rc=1; echo "FAILED (exit $status) on x86_64: edgepose run $args $extra"; }
    done
    return $rc
}

# venv_install VENV TAG PIP-ARGS...: a fresh venv from the system Python, then pip install as a Pi user does.
venv_install() {
    local venv=$1 tag=$2
    shift 2
    in_root "
        [ -d $venv ] || python3 -m venv $venv
        cd $SRC
        $venv/bin/pip --version
        $venv/bin/pip install --report $GUEST/out/pip-report-$tag.json $*
        $venv/bin/pip freeze > $GUEST/out/freeze-$tag.txt
        cat $GUEST/out/freeze-$tag.txt"
}

# arm_run VENV SUFFIX EXTRA NAME|ARGS...: edgepose run inside the root; pairs recorded for compare.py.
arm_run() {
    local venv=$1 suffix=$2 extra=$3 r name args rc=0 status
    shift 3
    for r in "$@"; do
        name=${r%%|*} args=${r#*|}
        if in_root "set -x; $venv/bin/edgepose run $args $extra -o $GUEST/out/$name$suffix.jsonl"; then
            printf '%s\t%s\t%s\t%s\n' "$name$suffix" "$WORK/x86/$name$suffix.jsonl" "$RFS$GUEST/out/$name$suffix.jsonl" \
                "edgepose run $args $extra: aarch64 vs x86_64" >>"$WORK/pairs.tsv"
        else
            status=$? rc=1
            echo "FAILED (exit $status) on aarch64: edgepose run $args $extra"
        fi
    done
    return $rc
}

doctor() {
    in_root "
        if ! $1/bin/edgepose doctor --help > /tmp/doctor-help.txt 2>&1; then
            if grep -q 'No such command' /tmp/doctor-help.txt; then
                echo 'skipped: edgepose has no doctor command (yet)'; exit 99
            fi
            cat /tmp/doctor-help.txt; exit 1
        fi
        $1/bin/edgepose doctor"
}

bench() { # bench VENV TAG EXTRA
    in_root "set -x; $1/bin/edgepose bench --runs $BENCH_RUNS --warmup 2 --input $SHARED/data/coco/000000000785.jpg \
        --label $LABEL$2 --json $GUEST/out/bench$2.json --no-db $3"
}

say "edgepose arm64 Pi OS check: root $RFS, code $(git -C "$REPO" rev-parse --short "$REF"), QEMU_CPU=$CPU"
echo "    logs: $WORK/logs   result: $OUT"
echo "    emulated: every timing below is qemu's, never a Raspberry Pi's"
if ((HOST_SETUP)); then
    step host-setup critical host_setup
fi
[[ -n $(qemu_bin) ]] || { echo "no qemu-aarch64-static" >&2; FAILED=1; finish; }
meta qemu_version "$("$(qemu_bin)" --version | sed -n 1p)"
meta qemu_cpu "$CPU"
meta suite "$SUITE"
meta label "$LABEL"
meta host "$(uname -srm); $(. /etc/os-release && echo "$PRETTY_NAME")"
STEP_MSG="register qemu-aarch64 with binfmt_misc" step binfmt critical binfmt_setup
STEP_MSG="debootstrap $SUITE arm64 into $RFS (reused when complete)" step debootstrap critical debootstrap_root
STEP_MSG="mounts, pip configuration, committed code ($REF) into the root" step prepare-root critical prepare_root
STEP_MSG="the root runs as aarch64 under qemu (Debian, Python, emulated cpuinfo)" step root-info critical root_info
STEP_MSG="x86_64 reference: the same edgepose run commands on the host" step x86-reference optional x86_reference
STEP_MSG="x86_64 reference for tflite-runtime: a host venv with . 'numpy<2' tflite-runtime" \
    step x86-reference-tflite optional x86_reference_tflite

STEP_MSG="venv + pip install . (the on-device install)" step pip-install-base critical venv_install "$VENV" base .
STEP_MSG="edgepose run on the photos (single, multi), base install" step run-photos optional \
    arm_run "$VENV" "" "" "${RUNS_BASE[@]}"
STEP_MSG="pip install '.[video]'" step pip-install-video critical venv_install "$VENV" video "'.[video]'"
STEP_MSG="edgepose run on the videos (demo single+multi, squats single)" step run-videos optional \
    arm_run "$VENV" "" "" "${RUNS_VIDEO[@]}"
STEP_MSG="edgepose doctor" step doctor optional doctor "$VENV"
STEP_MSG="edgepose bench --runs $BENCH_RUNS --label $LABEL (emulated)" step bench optional bench "$VENV" "" ""

STEP_MSG="second venv: pip install . 'numpy<2' tflite-runtime" step pip-install-tflite optional \
    venv_install "$VENV_TFL" tflite . "'numpy<2'" tflite-runtime
if grep -q $'^pip-install-tflite\tpass' "$WORK/steps.tsv"; then
    STEP_MSG="edgepose run --backend tflite-runtime on the photos" step run-photos-tflite optional \
        arm_run "$VENV_TFL" "-tflite-runtime" "--backend tflite-runtime" "${RUNS_BASE[@]}"
    STEP_MSG="edgepose bench --backend tflite-runtime (emulated)" step bench-tflite optional \
        bench "$VENV_TFL" "-tflite-runtime" "--backend tflite-runtime"
fi
finish
