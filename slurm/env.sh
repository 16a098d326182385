# Sourced by the sbatch scripts in this folder: activates hpcad's virtual environment, makes
# the compile cache private to the user (mode 700), and defines `hpcad_launch CMD...`, which
# starts CMD on every task of the job with srun where SLURM's pmi2 plugin serves the MPI,
# else mpiexec.
# Settings (environment variables, all optional; sbatch passes the submitting shell's on):
#   HPCAD_ROOT      the hpcad checkout (default: the directory sbatch was run from)
#   HPCAD_VENV      its virtual environment (default: $HPCAD_ROOT/.venv)
#   HPCAD_CACHE_DIR compiled-code cache, yours alone, on a filesystem every node sees
#                   (default: ~/.cache/hpcad)
#   HPCAD_LAUNCHER  auto (default), srun or mpiexec
set -euo pipefail
HPCAD_ROOT=${HPCAD_ROOT:-$SLURM_SUBMIT_DIR}
HPCAD_VENV=${HPCAD_VENV:-$HPCAD_ROOT/.venv}
if [ ! -x "$HPCAD_VENV/bin/python" ]; then
    echo "hpcad: no virtual environment at $HPCAD_VENV: set HPCAD_VENV (or HPCAD_ROOT)" >&2
    exit 2
fi
source "$HPCAD_VENV/bin/activate"
export HPCAD_CACHE_DIR=${HPCAD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hpcad}
# hpcad does not use a cache that others can write to (its code runs in every job using it)
(umask 077 && mkdir -p "$HPCAD_CACHE_DIR")
if [ -n "$(find "$HPCAD_CACHE_DIR" -maxdepth 0 \( ! -user "$(id -u)" -o -perm /022 \))" ]; then
    echo "hpcad: $HPCAD_CACHE_DIR is not yours alone, so hpcad will compile in memory:" \
         "chmod 700 it, or set HPCAD_CACHE_DIR to a directory of your own" >&2
fi
export NUMBA_NUM_THREADS=${NUMBA_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}

hpcad_launch() {
    local launcher=${HPCAD_LAUNCHER:-auto}
    if [ "$launcher" = auto ]; then
        launcher=mpiexec
        if [[ "$(srun --mpi=list 2>&1)" == *pmi2* ]]; then launcher=srun; fi
    fi
    case "$launcher" in
        srun) echo "launcher: srun --mpi=pmi2, $SLURM_NTASKS tasks"
              srun --mpi=pmi2 "$@" ;;
        mpiexec) echo "launcher: mpiexec -n $SLURM_NTASKS"
                 mpiexec -n "$SLURM_NTASKS" "$@" ;;
        *) echo "hpcad: HPCAD_LAUNCHER must be auto, srun or mpiexec, not '$launcher'" >&2
           return 2 ;;
    esac
}

echo "job $SLURM_JOB_ID on $SLURM_JOB_NODELIST: $SLURM_NTASKS tasks, venv $HPCAD_VENV, cache $HPCAD_CACHE_DIR"
