"""The host runs BLAS on one thread unless the environment chooses (see ohmflow.host)."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("threadpoolctl")

PROBE = ("import ohmflow.host, numpy; from threadpoolctl import threadpool_info; "
         "print(max(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'))")


def blas_threads(**env) -> int:
    base = {k: v for k, v in os.environ.items()
            if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[-1])


def test_one_blas_thread_by_default_and_the_users_choice_otherwise():
    assert blas_threads() == 1
    assert blas_threads(OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2") == 2
