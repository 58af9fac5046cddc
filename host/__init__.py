"""ohmflow.host: the Device API, analog layers, training, benchmarks and the ``ohmflow`` command.

The networks trained here multiply small matrices (tens of rows), where a multi-threaded BLAS
only adds synchronisation, and stalls whenever another process holds a core: on a loaded
2-core machine the twin trained 2.5x slower with OpenBLAS's two threads than with one. So,
unless the environment says otherwise, BLAS runs one thread in processes that import this
package before numpy (the ``ohmflow`` command and ``python -m ohmflow.host...``).
"""

import os as _os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")
