//! Differential checking of kernel C against the model.
