//! A module's parameters as safetensors bytes and back: what checkpoints and
//! chemistry's proxy write (readable by any safetensors tool), with one
//! metadata key so a file is byte-for-byte reproducible (burn's default
//! metadata is a hash map in random order), and a load that refuses any
//! tensor that does not fit instead of keeping a default silently.

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};

/// `module`'s parameters as safetensors, with `producer` as the one
/// metadata entry.
pub fn to_safetensors<M: Module>(module: &M, producer: &str) -> Result<Vec<u8>, String> {
    let mut store = SafetensorsStore::from_bytes(None)
        .clear_metadata()
        .metadata("producer", producer);
    module
        .save_into(&mut store)
        .map_err(|e| format!("cannot encode parameters as safetensors: {e}"))?;
    store
        .get_bytes()
        .map_err(|e| format!("cannot encode parameters as safetensors: {e}"))
}

/// `module` with the parameters of `bytes`; every tensor that is missing,
/// extra or of the wrong shape is named in the error.
pub fn from_safetensors<M: Module>(mut module: M, bytes: Vec<u8>) -> Result<M, String> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let applied = module.load_from(&mut store).map_err(|e| e.to_string())?;
    let mut problems: Vec<String> = applied.errors.iter().map(|e| format!("{e:?}")).collect();
    problems.extend(
        applied
            .missing
            .iter()
            .map(|(p, _)| format!("`{p}` is missing")),
    );
    problems.extend(
        applied
            .unused
            .iter()
            .map(|p| format!("`{p}` is not a parameter of this network")),
    );
    if problems.is_empty() {
        Ok(module)
    } else {
        Err(problems.join("; "))
    }
}
