//! Kernel C and patch series from the model.
