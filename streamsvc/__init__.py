"""streamsvc: online stream processing with incremental learners over Kafka."""

import os as _os

# The learners do many tiny matrix products per event (DriftMoE's router: a 16-row batch);
# multi-threaded BLAS only adds contention there — on a busy 2-core machine one router update
# took 75 ms with OpenBLAS's threads and 5.5 ms with one. Set before numpy loads; an explicit
# user setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
