"""TensorFlow's oneDNN kernels, switched on before TensorFlow is first imported.

They are off by default on CPUs without AVX-512 (AMD's, for one); on this project's
two-core AVX2 machine they train the models about 1.4x faster. The variable counts
only if set before TensorFlow is first imported, so the packages of the models
(:mod:`zspace.networks`, :mod:`zspace.training`, :mod:`zspace.store`) import this
module before anything of theirs imports TensorFlow; set ``TF_ENABLE_ONEDNN_OPTS=0``
to opt out. Results differ from the other kernels in the last bits only.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
