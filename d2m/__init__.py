"""D2M: Data-to-Model distillation (Sajedi et al., ECCV 2024); importing the package registers its methods."""
