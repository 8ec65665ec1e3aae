"""D2M: Data-to-Model distillation (Sajedi et al., ECCV 2024); importing the package registers its methods
(``d2m`` and the ablations ``d2m-gen``, ``d2m-em``, ``d2m-pm``, ``d2m-scratch``)."""

from d2m import distill  # noqa: F401
